"""Background tasks end with their owner: cancelled, and waited for until they have ended."""

from __future__ import annotations

import asyncio

import pytest

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


async def test_a_stop_given_up_on_raises_instead_of_passing_for_done() -> None:
    # The stopper's own deadline: a stop cancelled meanwhile must say so, not return as if the
    # task had ended (a cancel swallowed there let a shutdown go on with the task running).
    tasks = BackgroundTasks()
    began, cleaned_up = asyncio.Event(), asyncio.Event()

    async def slow_to_end() -> None:
        try:
            began.set()
            await asyncio.Event().wait()
        finally:
            await cleaned_up.wait()  # a cleanup that takes its time

    tasks.start(slow_to_end(), name="slow")
    await began.wait()

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await tasks.stop()

    [slow] = [task for task in asyncio.all_tasks() if task.get_name() == "slow"]
    assert not slow.done()
    cleaned_up.set()
    await asyncio.wait([slow])
    assert slow.cancelled()
