"""An order's completion is announced exactly once: by the transaction that finishes its last
variant, even when its last two variants finish at once in two transactions (READ COMMITTED),
and for every order of a group decided in one statement."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

from shared import lifecycle
from shared.db import Caller, transaction
from shared.events import OrderCompleted
from tests.helpers import wait_for
from tests.integration.generator.support import SeededOrder, seed_order

if TYPE_CHECKING:
    import asyncpg

    from shared.events import Event


async def _generating(pool: asyncpg.Pool, *orders: SeededOrder) -> None:
    """Every variant of ``orders`` in its first attempt."""
    async with transaction(pool, Caller.service()) as conn:
        await conn.execute(
            "UPDATE song_variants SET status = 'generating', attempts = 1"
            " WHERE order_id = ANY($1::uuid[])",
            [order.order_id for order in orders],
        )


def _done(order: SeededOrder, variant_id: uuid.UUID) -> lifecycle.Completion:
    return lifecycle.Completion(
        variant_id=variant_id,
        user_id=order.user_id,
        attempt=1,
        storage_path=f"{order.user_id}/{order.order_id}/{variant_id}.mp3",
        title="A song",
        lyrics="la la la",
        duration_seconds=30.0,
        correlation_id=f"corr-{variant_id}",
    )


def _completions(events: list[Event]) -> list[tuple[uuid.UUID, str]]:
    return [(event.order_id, event.status) for event in events if isinstance(event, OrderCompleted)]


async def test_the_last_two_variants_finishing_at_once_announce_the_order_once(
    pool: asyncpg.Pool,
) -> None:
    order = await seed_order(pool, variants=2)
    await _generating(pool, order)
    first, second = order.variant_ids
    first_decided = asyncio.Event()
    release_first = asyncio.Event()

    async def finish(variant_id: uuid.UUID, *, hold: bool) -> list[Event]:
        async with transaction(pool, Caller.service()) as conn:
            _, events = await lifecycle.complete_variants(conn, [_done(order, variant_id)])
            if hold:
                # Decided, not yet committed: the other variant finishes meanwhile.
                first_decided.set()
                await release_first.wait()
        return events

    holder = asyncio.create_task(finish(first, hold=True))
    await first_decided.wait()
    waiter = asyncio.create_task(finish(second, hold=False))

    async def second_waits_for_a_lock() -> bool:
        async with pool.acquire() as conn:
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        return bool(waiting)

    try:
        await wait_for(second_waits_for_a_lock, timeout=10, what="the second's wait for the lock")
    finally:
        release_first.set()
    first_events, second_events = await asyncio.gather(holder, waiter)

    # The first saw the second unfinished; the second, after the lock, saw both final.
    assert _completions(first_events) == []
    assert _completions(second_events) == [(order.order_id, "complete")]
    completed = next(e for e in second_events if isinstance(e, OrderCompleted))
    assert completed.correlation_id == f"corr-{second}"


async def test_a_group_announces_each_finished_order_once_in_one_decision(
    pool: asyncpg.Pool,
) -> None:
    whole = await seed_order(pool, variants=2)
    other = await seed_order(pool, variants=1)
    half = await seed_order(pool, variants=2)
    await _generating(pool, whole, other, half)
    group = [
        _done(whole, whole.variant_ids[0]),
        _done(other, other.variant_ids[0]),
        _done(whole, whole.variant_ids[1]),
        _done(half, half.variant_ids[0]),
    ]
    async with transaction(pool, Caller.service()) as conn:
        by_variant, ordered = await lifecycle.complete_variants(conn, group)

    finished = sorted([whole.order_id, other.order_id])
    assert _completions(ordered) == [(order_id, "complete") for order_id in finished]
    # Each completion is told with the variant of its order that was completed last here.
    assert _completions(by_variant[whole.variant_ids[1]]) == [(whole.order_id, "complete")]
    assert _completions(by_variant[whole.variant_ids[0]]) == []
    assert _completions(by_variant[half.variant_ids[0]]) == []

    # Announced once: deciding again finds nothing new, and the half-done order waits.
    async with transaction(pool, Caller.service()) as conn:
        again = await lifecycle.finalize_orders_if_done(
            conn, {whole.order_id: None, other.order_id: None, half.order_id: None}
        )
    assert again == {}
    async with transaction(pool, Caller.service()) as conn:
        _, rest = await lifecycle.complete_variants(conn, [_done(half, half.variant_ids[1])])
    assert _completions(rest) == [(half.order_id, "complete")]
