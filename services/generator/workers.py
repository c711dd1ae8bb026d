"""The generator's slots: at most ``concurrency`` deliveries in work, and no message fetched
before a slot is free for it.

The intake (``intake.py``) asks ``room()`` how many slots are free (waiting until one is), pulls
at most that many messages, and hands each to ``take``, which starts its work in a task and
never waits: a batch taken in one pass of the loop is claimed in one group commit.

While PostgreSQL is unreachable nothing more is fetched: every delivery counts against the
consumer's delivery limit, and taking message after message only to requeue it would spend the
limit of every waiting request within minutes, after which the server gives them up and their
variants fail. The first such error closes the intake; a probe reopens it once PostgreSQL
answers, and the requeued requests come back then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Protocol

from shared.db import DATABASE_UNREACHABLE
from shared.events import VariantRequested

from . import metrics
from .deadletters import MAX_ERROR_CHARS
from .parsing import parse_request
from .pipeline import Outcome, Report, process_request

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .delivery import Delivery
    from .pipeline import Pipeline

__all__ = ["ProcessRequest", "VariantWorkers"]

_log = logging.getLogger("serenade.generator.variants")
_PROBE_TIMEOUT = 2.0


class ProcessRequest(Protocol):
    """What a slot runs on a delivery: ``pipeline.process_request`` (tests pass a script)."""

    def __call__(
        self, delivery: Delivery, pipe: Pipeline, *, abandon: asyncio.Event
    ) -> Awaitable[Report]: ...


class VariantWorkers:
    """Runs the pipeline on up to ``concurrency`` deliveries at once; drains them on stop."""

    def __init__(
        self,
        pipe: Pipeline,
        *,
        concurrency: int,
        database_probe: Callable[[], Awaitable[object]] | None = None,
        probe_interval: float = 1.0,
        process: ProcessRequest = process_request,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._pipe = pipe
        self._process = process
        self._concurrency = concurrency
        self._running: dict[asyncio.Task[None], int | None] = {}
        # Set whenever admission may proceed again: a slot freed, PostgreSQL back, closing.
        self._slot_freed = asyncio.Event()
        self._abandon = asyncio.Event()
        self._closed = False
        self._database_up = True
        self._probe = database_probe or self._database_answers
        self._probe_interval = probe_interval
        self._probing: asyncio.Task[None] | None = None
        # Naks of deliveries that arrived after close (kept referenced until they are done).
        self._settling: set[asyncio.Task[None]] = set()
        self.outcomes: dict[Outcome, int] = dict.fromkeys(Outcome, 0)

    @property
    def in_flight(self) -> int:
        return len(self._running)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def taking(self) -> bool:
        """Whether the intake is open (False while PostgreSQL is unreachable)."""
        return self._database_up

    @property
    def free(self) -> int:
        """Slots free for more deliveries now (0 while closed or PostgreSQL is away)."""
        if self._closed or not self._database_up:
            return 0
        return max(self._concurrency - len(self._running), 0)

    async def room(self) -> int:
        """Wait until a slot is free and the intake open; the free slots then, or 0 once closed."""
        while not self._closed and not self.free:
            self._slot_freed.clear()
            await self._slot_freed.wait()
        return self.free

    def take(self, delivery: Delivery) -> None:
        """Start work on ``delivery`` now (the caller fetched it into a free slot)."""
        if self._closed:
            # Fetched as the process stops: straight back to the stream, untouched.
            task = asyncio.create_task(_hand_straight_back(delivery), name="hand-back")
            self._settling.add(task)
            task.add_done_callback(self._settling.discard)
            return
        sequence = delivery.position.sequence if delivery.position else None
        if sequence is not None and sequence in self._running.values():
            # Redelivered to this very process while its first delivery is still in work
            # (a stall outlasted the ack wait): that work settles the message.
            _log.warning("duplicate delivery of a message in work here", extra={"seq": sequence})
            return
        task = asyncio.create_task(self._work(delivery), name=f"variant-{sequence}")
        self._running[task] = sequence
        metrics.IN_FLIGHT.inc()
        task.add_done_callback(self._finished)

    async def admit(self, delivery: Delivery) -> None:
        """``take(delivery)``, then return once a slot is free for the next one."""
        self.take(delivery)
        if self._settling:
            await asyncio.wait(list(self._settling))
        await self.room()

    def close(self) -> None:
        """Admit nothing more (late deliveries are handed straight back)."""
        self._closed = True
        self._slot_freed.set()
        if self._probing is not None:
            self._probing.cancel()

    async def drain(self, *, grace: float, settle_timeout: float = 5.0) -> None:
        """Let work in flight finish for ``grace`` s, then hand back what is still generating
        (back to pending, nak: another process takes it at once); whatever still runs after
        ``settle_timeout`` more seconds is cancelled and left to the ack wait."""
        self.close()
        if self._settling:
            await asyncio.wait(list(self._settling), timeout=settle_timeout)
        if self._running:
            await asyncio.wait(list(self._running), timeout=grace)
        if self._running:
            _log.info("handing back %d variant(s) still in work", len(self._running))
            self._abandon.set()
            await asyncio.wait(list(self._running), timeout=settle_timeout)
        if self._running:
            for task in self._running:
                task.cancel()
            await asyncio.wait(list(self._running), timeout=1.0)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        metrics.IN_FLIGHT.dec()
        self._slot_freed.set()

    async def _work(self, delivery: Delivery) -> None:
        started = time.monotonic()
        try:
            report = await self._process(delivery, self._pipe, abandon=self._abandon)
        except Exception as error:  # noqa: BLE001 - infrastructure: requeue, never lose it
            if isinstance(error, DATABASE_UNREACHABLE):
                self._database_lost()
            report = await self._requeue(delivery, error)
        self.outcomes[report.outcome] += 1
        metrics.record_report(report)
        _log_report(report, delivery, time.monotonic() - started)

    def _database_lost(self) -> None:
        """Close the intake until the probe finds PostgreSQL answering again."""
        if self._database_up:
            _log.warning("PostgreSQL is unreachable: taking no more messages until it answers")
        self._database_up = False
        if not self._closed and (self._probing is None or self._probing.done()):
            self._probing = asyncio.create_task(self._until_database_answers(), name="db-probe")

    async def _until_database_answers(self) -> None:
        while True:
            await asyncio.sleep(self._probe_interval)
            try:
                # asyncio.timeout: wait_for (Python 3.11) can swallow a cancel that comes as
                # the probe answers (bpo-42130), and a stopping generator would then go on.
                async with asyncio.timeout(_PROBE_TIMEOUT):
                    await self._probe()
            except Exception:  # noqa: BLE001, S112 - still away: probe again
                continue
            break
        _log.info("PostgreSQL answers again: taking messages")
        self._database_up = True
        self._slot_freed.set()

    async def _database_answers(self) -> None:
        async with self._pipe.pool.acquire(timeout=_PROBE_TIMEOUT) as conn:
            await conn.fetchval("SELECT 1")

    async def _requeue(self, delivery: Delivery, error: Exception) -> Report:
        """Redeliver later (backoff by delivery count); a redelivery takes the variant over."""
        delivered = delivery.position.delivered if delivery.position else 1
        try:
            await delivery.nak(delay=self._pipe.policy.backoff_for(delivered))
        except Exception as nak_error:  # noqa: BLE001 - then the ack wait redelivers it
            _log.warning("cannot nak a delivery: %r", nak_error)
        parsed = parse_request(delivery.data)
        if isinstance(parsed, VariantRequested):
            return Report(
                Outcome.REQUEUED, parsed.variant_id, parsed.order_id, parsed.variant_number,
                error=repr(error), correlation_id=parsed.correlation_id,
            )  # fmt: skip
        return Report(Outcome.REQUEUED, error=repr(error))


async def _hand_straight_back(delivery: Delivery) -> None:
    with contextlib.suppress(Exception):
        await delivery.nak()


def _log_report(report: Report, delivery: Delivery, seconds: float) -> None:
    position = delivery.position
    level = logging.WARNING if report.outcome is Outcome.REQUEUED else logging.INFO
    _log.log(
        level,
        "variant",
        extra={
            "variant_id": str(report.variant_id) if report.variant_id else None,
            "order_id": str(report.order_id) if report.order_id else None,
            "variant_number": report.variant_number,
            "attempt": report.attempt,
            "outcome": report.outcome.value,
            "duration_ms": round(seconds * 1000, 1),
            # Bounded: a poison message's error can quote a megabyte of it.
            "error": report.error[:MAX_ERROR_CHARS] if report.error else None,
            "correlation_id": report.correlation_id,
            "seq": position.sequence if position else None,
            "delivered": position.delivered if position else None,
        },
    )
