"""Claims and completions in group commits, against the real PostgreSQL (and nats-server for the
end-to-end case): one bad row never fails its neighbours, a failed group falls back to each item
alone, and a message is settled only after the commit that holds its variant."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import pytest

from services.generator.delivery import Position
from services.generator.groups import ClaimRequest, GroupCommit, PipelineGroups, claim_group
from services.generator.pipeline import Outcome, Pipeline, Policy, process_request
from services.generator.providers import InstantProvider
from shared.db import Caller, transaction
from shared.events import STREAM_NAME, SUBJECT_VARIANT_REQUESTED, VariantRequested
from shared.storage import storage_from_url
from shared.unit_of_work import unit_of_work
from tests.helpers import wait_for

from .support import (
    SeededOrder,
    all_final,
    all_requests_settled,
    events,
    request_all,
    running_generator,
    seed_order,
    statuses,
    variants_of,
)

if TYPE_CHECKING:
    import asyncpg

    from services.generator.providers.base import GeneratedSong, SongRequest
    from shared import lifecycle

    from .conftest import GeneratorEnv


@dataclass
class _Delivery:
    """A delivery that records how it was settled and, at that moment, what a fresh
    transaction sees of its variant: a settlement must come after the commit."""

    data: bytes
    position: Position
    pool: asyncpg.Pool
    variant_id: uuid.UUID
    subject: str = SUBJECT_VARIANT_REQUESTED
    correlation_id: str | None = None
    settled: list[str] = field(default_factory=list)
    status_when_settled: list[str] = field(default_factory=list)

    async def _seen(self) -> None:
        async with transaction(self.pool, Caller.service()) as conn:
            status = await conn.fetchval(
                "SELECT status FROM song_variants WHERE id = $1", self.variant_id
            )
        self.status_when_settled.append(str(status))

    async def ack(self) -> None:
        await self._seen()
        self.settled.append("ack")

    async def nak(self, delay: float | None = None) -> None:
        await self._seen()
        self.settled.append(f"nak {delay}")

    async def in_progress(self) -> None:
        self.settled.append("in_progress")


def _deliveries(env: GeneratorEnv, orders: list[SeededOrder]) -> list[_Delivery]:
    found: list[_Delivery] = []
    for order in orders:
        for number, variant_id in enumerate(order.variant_ids, start=1):
            event = VariantRequested(
                variant_id=variant_id, order_id=order.order_id, variant_number=number,
                reason="created",
            )  # fmt: skip
            position = Position(STREAM_NAME, len(found) + 1, None, 1)
            found.append(_Delivery(event.to_json(), position, env.pool, variant_id))
    return found


class _NulLyrics:
    """Valid songs, except for one variant whose lyrics hold a NUL, which no text column takes:
    the row that fails any statement it is part of. Every song is handed over at the same
    moment, once ``together`` are asked for, so that they are completed as one group."""

    def __init__(self, poisoned: uuid.UUID, *, together: int) -> None:
        self._poisoned = poisoned
        self._inner = InstantProvider()
        self._together = together
        self._asked = 0
        self._all_asked = asyncio.Event()

    async def generate(self, request: SongRequest) -> GeneratedSong:
        self._asked += 1
        if self._asked >= self._together:
            self._all_asked.set()
        await self._all_asked.wait()
        # The last one asked finds the event set: without this pass it would be done in its
        # first step, which run_provider hands back a pass earlier than the others' wait.
        await asyncio.sleep(0)
        song = await self._inner.generate(request)
        if (request.order_id, request.variant_number) == (self._poisoned, 2):
            return replace(song, lyrics="la la\x00la")
        return song


def _grouped_pipeline(env: GeneratorEnv) -> Pipeline:
    policy = Policy.from_settings(env.settings)
    return Pipeline(
        env.pool,
        storage_from_url(env.settings.resolved_storage_url),
        InstantProvider(),
        policy,
        announce=lambda: None,
        groups=PipelineGroups.create(
            env.pool, max_attempts=policy.max_attempts, announce=lambda: None
        ),
    )


async def _outbox(env: GeneratorEnv, subject: str) -> list[dict[str, object]]:
    async with transaction(env.pool, Caller.service()) as conn:
        rows = await conn.fetch(
            "SELECT payload FROM outbox WHERE subject = $1 ORDER BY id", subject
        )
    return [dict(row["payload"]) for row in rows]


async def test_a_poison_row_fails_its_group_then_only_itself(
    generator_env: GeneratorEnv, caplog: pytest.LogCaptureFixture
) -> None:
    env = generator_env
    healthy, poisoned = await seed_order(env.pool), await seed_order(env.pool)
    pipe = replace(_grouped_pipeline(env), provider=_NulLyrics(poisoned.order_id, together=6))
    deliveries = _deliveries(env, [healthy, poisoned])
    bad = deliveries[4]  # the poisoned order's second variant

    with caplog.at_level(logging.INFO, logger="services.generator.groups"):
        results = await asyncio.gather(
            *(process_request(d, pipe, abandon=asyncio.Event()) for d in deliveries),
            return_exceptions=True,
        )

    # The completions went together and failed together, then each alone.
    failed_groups = [r.args for r in caplog.records if "failed, each goes alone" in r.msg]
    assert [args[0] for args in failed_groups if isinstance(args, tuple)] == [6]
    good = [d for d in deliveries if d is not bad]
    assert [r.outcome for r in results if not isinstance(r, BaseException)] == [
        Outcome.COMPLETE
    ] * 5
    assert [d.settled for d in good] == [["ack"]] * 5
    assert [d.status_when_settled for d in good] == [["complete"]] * 5
    # The bad row alone: its error goes to the caller (which requeues it), nothing settled.
    assert isinstance(results[4], Exception)
    assert bad.settled == []
    rows = await variants_of(env.pool, poisoned.order_id)
    assert [(row.status.value, row.attempts) for row in rows] == [
        ("complete", 1),
        ("generating", 1),
        ("complete", 1),
    ]
    completed = await _outbox(env, "serenade.orders.completed")
    assert [event["order_id"] for event in completed] == [str(healthy.order_id)]


async def test_a_failed_group_transaction_is_rolled_back_and_each_item_claimed_alone(
    generator_env: GeneratorEnv, caplog: pytest.LogCaptureFixture
) -> None:
    env = generator_env
    orders = [await seed_order(env.pool) for _ in range(2)]
    policy = Policy.from_settings(env.settings)
    failures: list[int] = []

    async def claims_then_fail_once(
        conn: asyncpg.Connection, items: list[ClaimRequest]
    ) -> list[lifecycle.StartedAttempt | None]:
        started = await claim_group(conn, items, max_attempts=policy.max_attempts)
        if not failures:
            failures.append(len(items))
            raise ConnectionResetError("lost in the middle of the group")
        return started

    groups = PipelineGroups(
        claims=GroupCommit(env.pool, claims_then_fail_once, announce=lambda: None),
        completions=PipelineGroups.create(
            env.pool, max_attempts=policy.max_attempts, announce=lambda: None
        ).completions,
    )
    pipe = replace(_grouped_pipeline(env), groups=groups)
    deliveries = _deliveries(env, orders)

    with caplog.at_level(logging.INFO, logger="services.generator.groups"):
        reports = await asyncio.gather(
            *(process_request(d, pipe, abandon=asyncio.Event()) for d in deliveries)
        )

    assert failures[0] > 1  # a real group failed
    assert [report.outcome for report in reports] == [Outcome.COMPLETE] * 6
    assert [d.settled for d in deliveries] == [["ack"]] * 6
    for order in orders:
        rows = await variants_of(env.pool, order.order_id)
        # The rolled-back claims counted no attempt and announced nothing.
        assert [(row.status.value, row.attempts) for row in rows] == [("complete", 1)] * 3
    announced = await _outbox(env, "serenade.variants.status")
    assert sorted(str((e["variant_id"], e["status"], e["attempts"])) for e in announced) == sorted(
        str((str(d.variant_id), status, 1))
        for d in deliveries
        for status in ("generating", "complete")
    )
    completed = await _outbox(env, "serenade.orders.completed")
    assert sorted(str(e["order_id"]) for e in completed) == sorted(str(o.order_id) for o in orders)


async def test_a_variant_twice_in_one_group_is_left_to_be_decided_alone(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    order = await seed_order(env.pool)
    twice, other, _ = order.variant_ids
    items = [
        ClaimRequest(twice, redelivered=False, correlation_id=None),
        ClaimRequest(other, redelivered=False, correlation_id=None),
        ClaimRequest(twice, redelivered=True, correlation_id=None),
    ]

    async with unit_of_work(env.pool, Caller.service()) as uow:
        started = await claim_group(uow.conn, items, max_attempts=3)

    assert started[0] is None
    assert started[2] is None
    assert started[1] is not None
    assert (started[1].found.variant.id, started[1].attempt) == (other, 1)
    rows = {row.id: row for row in await variants_of(env.pool, order.order_id)}
    assert (rows[twice].status.value, rows[twice].attempts) == ("pending", 0)
    assert (rows[other].status.value, rows[other].attempts) == ("generating", 1)
    announced = await _outbox(env, "serenade.variants.status")
    assert [(e["variant_id"], e["status"]) for e in announced] == [(str(other), "generating")]


async def test_requests_queued_together_complete_once_each_and_are_acked(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    orders = [await seed_order(env.pool) for _ in range(30)]
    for order in orders:
        await request_all(env.js, order)

    async with running_generator(env.with_settings(generator_concurrency=64)):

        async def every_order_final() -> bool:
            return all([await all_final(env.pool, order.order_id) for order in orders])

        await wait_for(every_order_final, timeout=60, what="every variant final")
        await wait_for(lambda: all_requests_settled(env.js), what="every request acked")
        await wait_for(
            lambda: _has(events(env.recorder, "serenade.orders.completed"), len(orders)),
            what="every completion published",
        )
        info = await env.js.consumer_info(STREAM_NAME, "generator")

    completed = events(env.recorder, "serenade.orders.completed")
    assert sorted(str(e["order_id"]) for e in completed) == sorted(str(o.order_id) for o in orders)
    assert {e["status"] for e in completed} == {"complete"}
    for order in orders:
        for variant_id in order.variant_ids:
            assert statuses(env.recorder, variant_id) == ["generating", "complete"]
    assert info.num_redelivered == 0


async def _has(found: list[dict[str, object]], count: int) -> bool:
    return len(found) >= count
