"""The slots: admission only into a free slot, hand-back on stop, requeue on infrastructure
errors. The pipeline's step is injected as a script; no servers. Each test waits on what the
script or the probe saw happen (``wait_for``, with a deadline), never on a pause."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from services.generator.delivery import Position
from services.generator.pipeline import Outcome, Pipeline, Policy, Report
from services.generator.providers import InstantProvider
from services.generator.workers import VariantWorkers
from tests.helpers import wait_for

if TYPE_CHECKING:
    from services.generator.delivery import Delivery

# Long enough for any loaded machine; a passing test never waits it out.
_DEADLINE = 5.0


@dataclass
class _Delivery:
    sequence: int
    delivered: int = 1
    data: bytes = b"{}"
    subject: str = "serenade.variants.requested"
    correlation_id: str | None = None
    settled: list[str] = field(default_factory=list)

    @property
    def position(self) -> Position:
        return Position("SERENADE", self.sequence, None, self.delivered)

    async def ack(self) -> None:
        self.settled.append("ack")

    async def nak(self, delay: float | None = None) -> None:
        self.settled.append("nak" if delay is None else f"nak {delay:g}")

    async def in_progress(self) -> None:
        return None


class _Script:
    """Stands in for process_request: each delivery waits until released (or abandoned)."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.release: dict[int, asyncio.Event] = {}

    async def __call__(
        self, delivery: Delivery, pipe: Pipeline, *, abandon: asyncio.Event
    ) -> Report:
        del pipe  # the script decides, not the pipeline
        assert delivery.position is not None
        sequence = delivery.position.sequence
        self.started.append(sequence)
        release = self.release.setdefault(sequence, asyncio.Event())
        done = asyncio.ensure_future(release.wait())
        stop = asyncio.ensure_future(abandon.wait())
        await asyncio.wait({done, stop}, return_when=asyncio.FIRST_COMPLETED)
        done.cancel()
        stop.cancel()
        if release.is_set():
            await delivery.ack()
            return Report(Outcome.COMPLETE)
        await delivery.nak()
        return Report(Outcome.HANDED_BACK)


class _FlakyDatabase:
    """A probe that fails until ``back`` is set, counting its calls."""

    def __init__(self) -> None:
        self.back = asyncio.Event()
        self.probes = 0

    async def __call__(self) -> None:
        self.probes += 1
        if not self.back.is_set():
            raise ConnectionRefusedError("still away")


async def _database_down(delivery: Delivery, pipe: Pipeline, *, abandon: Any) -> Report:
    raise ConnectionRefusedError("PostgreSQL is away")


async def _answers() -> None:
    return None


def _pipeline() -> Pipeline:
    return Pipeline(
        pool=cast("Any", None),
        storage=cast("Any", None),
        provider=InstantProvider(),
        policy=Policy(max_attempts=3, retry_backoff=(2.0, 7.0), provider_timeout=5, heartbeat=1),
        announce=lambda: None,
    )


async def _until(condition: Any, what: str) -> None:
    async def check() -> bool:
        return bool(condition())

    await wait_for(check, timeout=_DEADLINE, interval=0.005, what=what)


async def _admitted(
    workers: VariantWorkers, script: _Script, delivery: _Delivery
) -> asyncio.Task[None]:
    """``admit(delivery)`` in a task, returned once the script has started the delivery: by
    then ``admit`` has either returned or is waiting for a slot (nothing in between awaits)."""
    task = asyncio.ensure_future(workers.admit(delivery))
    await _until(lambda: delivery.sequence in script.started, f"delivery {delivery.sequence}")
    return task


async def test_a_delivery_is_admitted_only_when_a_slot_is_free() -> None:
    script = _Script()
    workers = VariantWorkers(_pipeline(), concurrency=2, process=script)
    first = await _admitted(workers, script, _Delivery(1))
    assert first.done()  # one slot still free: fetch the next
    second = await _admitted(workers, script, _Delivery(2))
    assert not second.done()  # both slots busy: the fetch loop waits here
    assert workers.in_flight == 2

    script.release[1].set()
    await asyncio.wait_for(second, _DEADLINE)
    assert workers.in_flight == 1
    script.release[2].set()
    await workers.drain(grace=_DEADLINE)
    assert script.started == [1, 2]
    assert workers.outcomes[Outcome.COMPLETE] == 2


async def test_stopping_waits_for_the_grace_period_then_hands_back_the_rest() -> None:
    script = _Script()
    workers = VariantWorkers(_pipeline(), concurrency=3, process=script)
    quick, stuck = _Delivery(1), _Delivery(2)
    await _admitted(workers, script, quick)
    await _admitted(workers, script, stuck)

    draining = asyncio.ensure_future(workers.drain(grace=0.5))
    await _until(lambda: workers.closed, "the drain to start")
    script.release[1].set()  # finishes within the grace period
    await asyncio.wait_for(draining, _DEADLINE)

    assert quick.settled == ["ack"]
    assert stuck.settled == ["nak"]  # still in work when the grace ran out: handed back
    assert workers.in_flight == 0
    late = _Delivery(3)
    await workers.admit(late)  # fetched as the process stops: straight back
    assert late.settled == ["nak"]
    assert script.started == [1, 2]


async def test_a_redelivery_of_a_message_in_work_here_is_not_started_twice() -> None:
    script = _Script()
    workers = VariantWorkers(_pipeline(), concurrency=3, process=script)
    await _admitted(workers, script, _Delivery(7))
    again = _Delivery(7, delivered=2)
    admitted = asyncio.ensure_future(workers.admit(again))
    await asyncio.wait_for(admitted, _DEADLINE)  # slots free: admit returns at once

    assert workers.in_flight == 1
    assert script.started == [7]
    assert again.settled == []
    script.release[7].set()
    await workers.drain(grace=_DEADLINE)
    assert script.started == [7]


async def test_an_infrastructure_error_requeues_with_a_backoff_by_delivery_count(
    caplog: Any,
) -> None:
    workers = VariantWorkers(
        _pipeline(),
        concurrency=1,
        database_probe=_answers,
        probe_interval=0.01,
        process=_database_down,
    )
    first, third = _Delivery(1), _Delivery(2, delivered=3)
    with caplog.at_level(logging.INFO, logger="serenade.generator.variants"):
        await asyncio.wait_for(workers.admit(first), _DEADLINE)
        await asyncio.wait_for(workers.admit(third), _DEADLINE)
        await workers.drain(grace=_DEADLINE)

    assert first.settled == ["nak 2"]
    assert third.settled == ["nak 7"]  # the last backoff repeats
    lines = [r for r in caplog.records if r.getMessage() == "variant"]
    assert [getattr(r, "outcome", None) for r in lines] == ["requeued", "requeued"]
    assert all("PostgreSQL is away" in str(getattr(r, "error", "")) for r in lines)


async def test_while_postgres_is_unreachable_no_more_messages_are_taken() -> None:
    # Each delivery counts against the consumer's limit: taking message after message only to
    # requeue it would spend every waiting request's limit during an outage (drill 4).
    database = _FlakyDatabase()
    workers = VariantWorkers(
        _pipeline(),
        concurrency=4,
        database_probe=database,
        probe_interval=0.01,
        process=_database_down,
    )
    first, second = _Delivery(1), _Delivery(2)
    await asyncio.wait_for(workers.admit(first), _DEADLINE)  # a slot was free
    await _until(lambda: first.settled, "the first delivery to be requeued")
    assert first.settled == ["nak 2"]
    assert not workers.taking

    # The fetched one is tried (and requeued); the fetch after it waits.
    admitting = asyncio.ensure_future(workers.admit(second))
    # Three failed probes later, slots are free, yet the next fetch still waits.
    await _until(lambda: database.probes >= 3, "three failed probes")
    assert not admitting.done()

    database.back.set()
    await asyncio.wait_for(admitting, _DEADLINE)
    assert workers.taking
    await workers.drain(grace=_DEADLINE)


async def test_an_error_that_is_not_the_database_leaves_the_intake_open() -> None:
    async def broken(delivery: Delivery, pipe: Pipeline, *, abandon: Any) -> Report:
        raise RuntimeError("a bug, not an outage")

    probe = _FlakyDatabase()
    workers = VariantWorkers(_pipeline(), concurrency=2, database_probe=probe, process=broken)
    delivery = _Delivery(1)
    await asyncio.wait_for(workers.admit(delivery), _DEADLINE)
    await _until(lambda: delivery.settled, "the delivery to be requeued")
    await workers.drain(grace=_DEADLINE)

    assert delivery.settled == ["nak 2"]
    assert workers.taking
    assert probe.probes == 0  # no outage was suspected


async def test_stopping_while_postgres_is_unreachable_does_not_wait_for_it() -> None:
    database = _FlakyDatabase()  # never comes back
    workers = VariantWorkers(
        _pipeline(),
        concurrency=1,
        database_probe=database,
        probe_interval=0.01,
        process=_database_down,
    )
    admitting = asyncio.ensure_future(workers.admit(_Delivery(1)))
    await _until(lambda: database.probes >= 1, "a failed probe")
    assert not admitting.done()

    await asyncio.wait_for(workers.drain(grace=_DEADLINE), _DEADLINE)
    await asyncio.wait_for(admitting, _DEADLINE)
    assert database.probes >= 1


async def test_room_says_how_many_slots_are_free_and_waits_while_none_is() -> None:
    script = _Script()
    workers = VariantWorkers(_pipeline(), concurrency=3, process=script)
    assert await asyncio.wait_for(workers.room(), _DEADLINE) == 3
    for sequence in (1, 2, 3):  # one pull's batch, taken in one pass
        workers.take(_Delivery(sequence))
    await _until(lambda: script.started == [1, 2, 3], "the batch to start")
    waiting = asyncio.ensure_future(workers.room())
    await _until(lambda: workers.in_flight == 3, "three in work")
    assert not waiting.done()  # no slot free: nothing more is pulled

    script.release[2].set()
    assert await asyncio.wait_for(waiting, _DEADLINE) == 1
    workers.close()
    assert await asyncio.wait_for(workers.room(), _DEADLINE) == 0  # closed: stop pulling
    late = _Delivery(4)
    workers.take(late)
    for sequence in (1, 3):
        script.release[sequence].set()
    await workers.drain(grace=_DEADLINE)
    assert late.settled == ["nak"]  # pulled as the process stopped: straight back
    assert script.started == [1, 2, 3]
