"""The slots: admission only into a free slot, hand-back on stop, requeue on infrastructure
errors. The pipeline is replaced by a script; no servers."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import pytest

from services.generator import workers as workers_module
from services.generator.delivery import Position
from services.generator.pipeline import Outcome, Pipeline, Policy, Report
from services.generator.providers import InstantProvider
from services.generator.workers import VariantWorkers

if TYPE_CHECKING:
    from services.generator.delivery import Delivery


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


def _pipeline() -> Pipeline:
    return Pipeline(
        pool=cast("Any", None),
        storage=cast("Any", None),
        provider=InstantProvider(),
        policy=Policy(max_attempts=3, retry_backoff=(2.0, 7.0), provider_timeout=5, heartbeat=1),
        announce=lambda: None,
    )


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> _Script:
    fake = _Script()
    monkeypatch.setattr(workers_module, "process_request", fake)
    return fake


async def _admitted(workers: VariantWorkers, delivery: _Delivery) -> asyncio.Task[None]:
    task = asyncio.ensure_future(workers.admit(delivery))
    await asyncio.sleep(0.01)
    return task


async def test_a_delivery_is_admitted_only_when_a_slot_is_free(script: _Script) -> None:
    workers = VariantWorkers(_pipeline(), concurrency=2)
    first = await _admitted(workers, _Delivery(1))
    assert first.done()  # one slot still free: fetch the next
    second = await _admitted(workers, _Delivery(2))
    assert not second.done()  # both slots busy: the fetch loop waits here
    assert workers.in_flight == 2

    script.release[1].set()
    await asyncio.wait_for(second, 1)
    assert workers.in_flight == 1
    script.release[2].set()
    await workers.drain(grace=1)
    assert script.started == [1, 2]
    assert workers.outcomes[Outcome.COMPLETE] == 2


async def test_stopping_waits_for_the_grace_period_then_hands_back_the_rest(
    script: _Script,
) -> None:
    workers = VariantWorkers(_pipeline(), concurrency=3)
    quick, stuck = _Delivery(1), _Delivery(2)
    await _admitted(workers, quick)
    await _admitted(workers, stuck)
    asyncio.get_running_loop().call_later(0.05, script.release[1].set)

    await workers.drain(grace=0.3)

    assert quick.settled == ["ack"]
    assert stuck.settled == ["nak"]
    assert workers.in_flight == 0
    late = _Delivery(3)
    await workers.admit(late)  # fetched as the process stops: straight back
    assert late.settled == ["nak"]
    assert script.started == [1, 2]


async def test_a_redelivery_of_a_message_in_work_here_is_not_started_twice(
    script: _Script,
) -> None:
    workers = VariantWorkers(_pipeline(), concurrency=3)
    await _admitted(workers, _Delivery(7))
    again = _Delivery(7, delivered=2)
    await _admitted(workers, again)

    assert script.started == [7]
    assert again.settled == []
    script.release[7].set()
    await workers.drain(grace=1)


async def test_an_infrastructure_error_requeues_with_a_backoff_by_delivery_count(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def database_down(delivery: Delivery, pipe: Pipeline, *, abandon: Any) -> Report:
        raise ConnectionRefusedError("PostgreSQL is away")

    monkeypatch.setattr(workers_module, "process_request", database_down)
    workers = VariantWorkers(
        _pipeline(), concurrency=1, database_probe=_answers, probe_interval=0.01
    )
    first, third = _Delivery(1), _Delivery(2, delivered=3)
    with caplog.at_level(logging.INFO, logger="serenade.generator.variants"):
        await workers.admit(first)
        await workers.admit(third)
        await workers.drain(grace=1)

    assert first.settled == ["nak 2"]
    assert third.settled == ["nak 7"]  # the last backoff repeats
    lines = [r for r in caplog.records if r.getMessage() == "variant"]
    assert [getattr(r, "outcome", None) for r in lines] == ["requeued", "requeued"]
    assert all("PostgreSQL is away" in str(getattr(r, "error", "")) for r in lines)


async def _answers() -> None:
    return None


async def test_while_postgres_is_unreachable_no_more_messages_are_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each delivery counts against the consumer's limit: taking message after message only to
    # requeue it would spend every waiting request's limit during an outage (drill 4).
    async def database_down(delivery: Delivery, pipe: Pipeline, *, abandon: Any) -> Report:
        raise ConnectionRefusedError("PostgreSQL is away")

    back = asyncio.Event()

    async def probe() -> None:
        if not back.is_set():
            raise ConnectionRefusedError("still away")

    monkeypatch.setattr(workers_module, "process_request", database_down)
    workers = VariantWorkers(_pipeline(), concurrency=4, database_probe=probe, probe_interval=0.01)
    first, second = _Delivery(1), _Delivery(2)
    await asyncio.wait_for(workers.admit(first), 1)  # a slot was free
    await asyncio.sleep(0.05)
    assert first.settled == ["nak 2"]
    assert not workers.taking

    admitting = asyncio.ensure_future(workers.admit(second))
    await asyncio.sleep(0.1)
    assert not admitting.done()  # slots are free, yet the next fetch waits while it is away

    back.set()
    await asyncio.wait_for(admitting, 1)
    assert workers.taking
    await workers.drain(grace=1)


async def test_an_error_that_is_not_the_database_leaves_the_intake_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(delivery: Delivery, pipe: Pipeline, *, abandon: Any) -> Report:
        raise RuntimeError("a bug, not an outage")

    monkeypatch.setattr(workers_module, "process_request", broken)
    workers = VariantWorkers(_pipeline(), concurrency=2)
    delivery = _Delivery(1)
    await asyncio.wait_for(workers.admit(delivery), 1)
    await asyncio.sleep(0.05)

    assert delivery.settled == ["nak 2"]
    assert workers.taking
    await workers.drain(grace=1)


async def test_stopping_while_postgres_is_unreachable_does_not_wait_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def database_down(delivery: Delivery, pipe: Pipeline, *, abandon: Any) -> Report:
        raise OSError("no route to PostgreSQL")

    async def never() -> None:
        raise OSError("still away")

    monkeypatch.setattr(workers_module, "process_request", database_down)
    workers = VariantWorkers(_pipeline(), concurrency=1, database_probe=never, probe_interval=0.01)
    admitting = asyncio.ensure_future(workers.admit(_Delivery(1)))
    await asyncio.sleep(0.05)
    assert not admitting.done()

    await workers.drain(grace=1)
    await asyncio.wait_for(admitting, 1)
