"""The unit of work wakes the relay once its events are committed: never before the commit,
never after a rollback, never for a transaction that wrote no event, once for nested units."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from shared.db import Caller, create_pool, transaction
from shared.events import DeadLettered
from shared.outbox import enqueue
from shared.unit_of_work import unit_of_work

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg

    from tests.conftest import DatabaseFactory


@pytest.fixture(scope="module")
async def uow_pool(make_database: DatabaseFactory) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(await make_database(), min_size=1, max_size=2)
    yield pool
    await pool.close()


def _event() -> DeadLettered:
    return DeadLettered(
        original_subject="serenade.variants.requested",
        original_event=str(uuid.uuid4()),
        error_type="Drill",
        error="unit of work",
        attempts=1,
        service="uow-test",
    )


async def _in_outbox(pool: asyncpg.Pool, event: DeadLettered) -> bool:
    async with transaction(pool, Caller.service()) as conn:
        found: bool = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE event_id = $1)", event.event_id
        )
    return found


class _Wakes:
    """Counts wake-ups."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


async def test_the_relay_is_woken_after_the_commit_of_events(uow_pool: asyncpg.Pool) -> None:
    wakes = _Wakes()
    event = _event()
    async with unit_of_work(uow_pool, Caller.service(), wake=wakes) as uow:
        await uow.enqueue(event)
        assert wakes.count == 0  # not before the commit
    assert wakes.count == 1
    assert await _in_outbox(uow_pool, event)


async def test_an_event_written_by_a_function_handed_the_connection_wakes_it_too(
    uow_pool: asyncpg.Pool,
) -> None:
    wakes = _Wakes()
    async with unit_of_work(uow_pool, Caller.service(), wake=wakes) as uow:
        await enqueue(uow.conn, _event())  # as shared.requeue does
    assert wakes.count == 1


async def test_no_wake_without_events_or_after_a_rollback(uow_pool: asyncpg.Pool) -> None:
    wakes = _Wakes()
    async with unit_of_work(uow_pool, Caller.service(), wake=wakes) as uow:
        await uow.conn.fetchval("SELECT 1")
    event = _event()

    async def write_then_fail() -> None:
        async with unit_of_work(uow_pool, Caller.service(), wake=wakes) as uow:
            await uow.enqueue(event)
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError, match="changed my mind"):
        await write_then_fail()
    assert wakes.count == 0
    assert not await _in_outbox(uow_pool, event)


async def test_a_nested_unit_wakes_once_when_the_outer_one_commits(
    uow_pool: asyncpg.Pool,
) -> None:
    wakes = _Wakes()
    async with unit_of_work(uow_pool, Caller.service(), wake=wakes) as outer:
        async with unit_of_work(outer.conn, Caller.service(), wake=wakes) as inner:
            await inner.enqueue(_event())
        assert wakes.count == 0  # a savepoint released is not a commit
        assert outer.wrote_events
    assert wakes.count == 1
