"""Tasks that run beside a service for its whole life: started with it, cancelled and awaited
when it stops (the outbox relay, the reminders, the API's NATS link and live feed).

One way to do it, so that none is left running after its owner stopped, and a stop waits until
the task has really ended (its ``finally`` blocks have run) before the owner closes what it used.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Coroutine

__all__ = ["BackgroundTasks"]


class BackgroundTasks:
    """The background tasks of one owner."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def running(self) -> bool:
        """Whether any task is still running."""
        return any(not task.done() for task in self._tasks)

    @property
    def started(self) -> bool:
        """Whether tasks were started and not stopped since."""
        return bool(self._tasks)

    def start(self, work: Coroutine[Any, Any, None], *, name: str) -> None:
        """Run ``work`` in a task named ``name`` until ``stop``."""
        self._tasks.append(asyncio.create_task(work, name=name))

    async def stop(self) -> None:
        """Cancel every task, the last started first, and wait for each to end."""
        tasks, self._tasks = self._tasks, []
        for task in reversed(tasks):
            task.cancel()
            # asyncio.wait, not ``await task`` under suppress(CancelledError): that swallowed a
            # cancel of the stopper too (a shutdown's own deadline), and the stop then went on
            # as if the task had ended while it still ran.
            await asyncio.wait([task])
            if not task.cancelled():
                task.result()  # it had failed before the cancel: its error, as before
