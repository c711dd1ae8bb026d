"""Background tasks end with their owner: cancelled, and waited for until they have ended."""

from __future__ import annotations

import asyncio

from shared.background import BackgroundTasks


async def test_stop_cancels_every_task_and_waits_for_its_cleanup() -> None:
    tasks = BackgroundTasks()
    began = asyncio.Event()
    ended: list[str] = []

    async def forever(name: str) -> None:
        try:
            began.set()
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # cleanup that itself awaits
            ended.append(name)

    tasks.start(forever("first"), name="first")
    tasks.start(forever("second"), name="second")
    await began.wait()
    assert tasks.running
    assert tasks.started

    await tasks.stop()

    assert ended == ["second", "first"]  # the last started stops first
    assert not tasks.running
    assert not tasks.started
    await tasks.stop()  # a second stop is harmless
