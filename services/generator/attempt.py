"""One run of a provider: under a timeout, with the message kept alive, abandoned on request.

JetStream redelivers a message whose ack wait passes without a sign of life. A provider may run
longer than that, so while it runs the message gets ``in_progress`` every ``heartbeat`` seconds
(a third of the ack wait): a live generator keeps its work, a dead one loses it one ack wait
after its last heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .providers.base import GeneratedSong

__all__ = ["Abandoned", "InvalidSong", "ProviderTimeout", "check_song", "run_provider"]

_log = logging.getLogger(__name__)
_EXTENSION = re.compile(r"^[a-z0-9]{1,8}$")


class ProviderTimeout(TimeoutError):  # noqa: N818 - it names the outcome
    """The provider took longer than the attempt may."""


class Abandoned(Exception):  # noqa: N818 - an outcome, not a fault
    """The process is stopping: the attempt is given back, not failed."""


class InvalidSong(ValueError):  # noqa: N818
    """The provider returned something that cannot be stored as a song."""


async def run_provider(
    generation: Awaitable[GeneratedSong],
    *,
    timeout: float,
    keep_alive: Callable[[], Awaitable[None]],
    heartbeat: float,
    abandon: asyncio.Event,
) -> GeneratedSong:
    """``generation``'s song; ProviderTimeout after ``timeout`` s; Abandoned when ``abandon`` is
    set first. Whatever ends the wait, the provider's task does not outlive this call."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    work = asyncio.ensure_future(generation)
    stopping: asyncio.Task[Literal[True]] | None = None
    heart: _Heartbeat | None = None
    try:
        # One pass of the loop first: a provider with nothing to wait for (``instant``, a
        # song at hand) is done by then, and needs no waiter, timer or heartbeat. Those cost
        # more than such a provider's own work (a task for the abandon's wait among them).
        await asyncio.sleep(0)
        if work.done():
            return work.result()
        stopping = waiting = asyncio.ensure_future(abandon.wait())
        # Heartbeats from the loop's timer, not a task of their own: most attempts end before
        # the first one is due, and a task per attempt cost more than the attempt's own work.
        heart = _Heartbeat(keep_alive, heartbeat)
        done, _ = await asyncio.wait(
            {work, waiting},
            timeout=max(0.0, timeout - (loop.time() - started)),
            return_when=asyncio.FIRST_COMPLETED,
        )
        if work in done:
            return work.result()
        if waiting in done:
            raise Abandoned("the generator is stopping")
        raise ProviderTimeout(f"the provider took longer than {timeout:g} s")
    finally:
        if stopping is not None:
            stopping.cancel()
        beating = heart.stop() if heart is not None else []
        pending = [task for task in (work, *beating) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            # Wait for the cancellations, but never for a provider that ignores them.
            await asyncio.wait(pending, timeout=1.0)


class _Heartbeat:
    """``keep_alive()`` every ``every`` seconds until stopped."""

    def __init__(self, keep_alive: Callable[[], Awaitable[None]], every: float) -> None:
        self._keep_alive = keep_alive
        self._every = every
        self._loop = asyncio.get_running_loop()
        self._beating: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(every, self._due)

    def _due(self) -> None:
        if self._beating is None or self._beating.done():
            self._beating = self._loop.create_task(self._beat())
        self._timer = self._loop.call_later(self._every, self._due)

    async def _beat(self) -> None:
        try:
            await self._keep_alive()
        except Exception as error:  # noqa: BLE001 - a missed heartbeat must not fail the work
            _log.warning("in_progress failed: %s", error)

    def stop(self) -> list[asyncio.Task[None]]:
        """No more beats; the one in flight, if any, for the caller to cancel."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return [] if self._beating is None else [self._beating]


def check_song(song: GeneratedSong) -> GeneratedSong:
    """The song when it can be stored and described; InvalidSong otherwise."""
    if not song.audio:
        raise InvalidSong("the provider returned no audio")
    if not _EXTENSION.match(song.extension):
        raise InvalidSong(f"the provider returned an unusable file extension {song.extension!r}")
    if not math.isfinite(song.duration_seconds) or song.duration_seconds < 0:
        raise InvalidSong(f"the provider returned a duration of {song.duration_seconds!r} s")
    return song
