"""The unit of work wakes the relay once its events are committed: never before the commit,
never after a rollback, never for a transaction that wrote no event, once for nested units.
Its events are written by the message that commits it (one round trip less), in the order they
were enqueued, as service_role, byte for byte; a savepoint rolled back to drops its own."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import asyncpg
import orjson
import pytest

from shared.db import Caller, connect, create_pool, transaction
from shared.events import DeadLettered
from shared.outbox import enqueue
from shared.unit_of_work import unit_of_work, writing_events

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from asyncpg.connection import LoggedQuery

    from tests.conftest import DatabaseFactory


@pytest.fixture(scope="module")
async def uow_dsn(make_database: DatabaseFactory) -> str:
    return await make_database()


@pytest.fixture(scope="module")
async def uow_pool(uow_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(uow_dsn, min_size=1, max_size=2)
    yield pool
    await pool.close()


def _event(error: str = "unit of work", **fields: object) -> DeadLettered:
    return DeadLettered.model_validate(
        {
            "original_subject": "serenade.variants.requested",
            "original_event": str(uuid.uuid4()),
            "error_type": "Drill",
            "error": error,
            "attempts": 1,
            "service": "uow-test",
            **fields,
        }
    )


async def _outbox_ids(pool: asyncpg.Pool, events: list[DeadLettered]) -> list[uuid.UUID]:
    """Which of ``events`` the outbox holds, in the order of its ids (the relay's order)."""
    async with transaction(pool, Caller.service()) as conn:
        rows = await conn.fetch(
            "SELECT event_id FROM outbox WHERE event_id = ANY($1::uuid[]) ORDER BY id",
            [event.event_id for event in events],
        )
    return [row["event_id"] for row in rows]


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


async def test_the_events_travel_in_the_message_that_commits(uow_pool: asyncpg.Pool) -> None:
    first, second = _event(), _event()
    sent: list[str] = []

    def record(query: LoggedQuery) -> None:
        sent.append(query.query)

    async def messages() -> list[str]:
        await asyncio.sleep(0)  # query loggers are called on the loop's next pass
        return sent

    async with uow_pool.acquire() as conn:
        conn.add_query_logger(record)
        try:
            async with unit_of_work(conn, Caller.service()) as uow:
                assert len(await messages()) == 1  # BEGIN and the caller's settings
                await uow.enqueue(first)
                await enqueue(uow.conn, second)
                assert len(await messages()) == 1  # enqueued: nothing sent
                # Not written yet, not even as seen from its own transaction.
                assert not await conn.fetchval(
                    "SELECT count(*) FROM outbox WHERE event_id = ANY($1::uuid[])",
                    [first.event_id, second.event_id],
                )
                read = len(await messages())
            commit = (await messages())[read:]
        finally:
            conn.remove_query_logger(record)
    # One message: the role, one insert of both rows, COMMIT.
    assert len(commit) == 1, commit
    assert commit[0].startswith("SET LOCAL ROLE service_role; INSERT INTO outbox ")
    assert commit[0].endswith("; COMMIT")
    assert commit[0].count("INSERT") == 1
    assert await _outbox_ids(uow_pool, [second, first]) == [first.event_id, second.event_id]


async def test_a_savepoint_rolled_back_to_drops_its_events_and_keeps_the_order_of_the_rest(
    uow_pool: asyncpg.Pool,
) -> None:
    wakes = _Wakes()
    before, kept, released, dropped, plain, after = (_event() for _ in range(6))

    async def nested_then_fail(conn: asyncpg.Connection) -> None:
        async with unit_of_work(conn, Caller.service(), wake=wakes) as inner:
            async with transaction(inner.conn, Caller.service()):
                await inner.enqueue(released)  # released into a unit rolled back below
            await inner.enqueue(dropped)
            raise RuntimeError("not these")

    async def savepoint_then_fail(conn: asyncpg.Connection) -> None:
        # A savepoint without a unit of its own: its events are dropped all the same.
        async with transaction(conn, Caller.service()):
            await enqueue(conn, plain)
            raise RuntimeError("nor this")

    async with unit_of_work(uow_pool, Caller.service(), wake=wakes) as outer:
        await outer.enqueue(before)
        async with unit_of_work(outer.conn, Caller.service(), wake=wakes) as inner:
            await inner.enqueue(kept)  # released: the outer commit writes it
        with pytest.raises(RuntimeError, match="not these"):
            await nested_then_fail(outer.conn)
        with pytest.raises(RuntimeError, match="nor this"):
            await savepoint_then_fail(outer.conn)
        await outer.enqueue(after)
        assert wakes.count == 0
    assert wakes.count == 1
    written = await _outbox_ids(uow_pool, [after, plain, dropped, released, kept, before])
    assert written == [before.event_id, kept.event_id, after.event_id]


async def test_a_payload_of_quotes_backslashes_dollars_and_unicode_is_written_as_it_was(
    uow_pool: asyncpg.Pool,
) -> None:
    awkward = (
        "it's \\'quoted'\\' \"twice\" \\ \\\\ \\x41 \\u0041 E'x' $$ $tag$ $1 ;"
        " COMMIT; -- /* é ß 漢字 🎵 \u2028 \n\t\r \x7f"
    )
    event = _event(
        awkward,
        original_event={"nested": [awkward, {"$$": awkward}], "n": 1.5},
        correlation_id=awkward,
    )
    async with unit_of_work(uow_pool, Caller.service()) as uow:
        await uow.enqueue(event)
    async with transaction(uow_pool, Caller.service()) as conn:
        row = await conn.fetchrow(
            "SELECT payload, headers, subject, payload = $2::text::jsonb AS same_payload,"
            " headers = $3::text::jsonb AS same_headers FROM outbox WHERE event_id = $1",
            event.event_id,
            event.model_dump_json(),
            orjson.dumps(event.headers()).decode(),
        )
    assert row is not None
    assert row["same_payload"]
    assert row["same_headers"]
    assert row["payload"] == event.model_dump(mode="json")
    assert row["payload"]["error"] == awkward
    assert row["headers"] == event.headers()
    assert row["subject"] == event.subject


async def test_a_commit_that_fails_writes_no_event_and_wakes_nothing(
    uow_dsn: str, uow_pool: asyncpg.Pool
) -> None:
    wakes = _Wakes()
    first, twice = _event(), _event()

    async def enqueue_twice(conn: asyncpg.Connection) -> None:
        # The same event twice: the outbox's unique event_id refuses the commit's insert.
        async with unit_of_work(conn, Caller.service(), wake=wakes) as uow:
            await uow.enqueue(first, twice)
            await uow.enqueue(twice)

    conn = await connect(uow_dsn)
    try:
        with pytest.raises(asyncpg.UniqueViolationError):
            await enqueue_twice(conn)
        assert wakes.count == 0
        assert await _outbox_ids(uow_pool, [first, twice]) == []
        # Rolled back, not left aborted: the connection takes the next unit as before.
        assert not conn.is_in_transaction()
        async with unit_of_work(conn, Caller.service(), wake=wakes) as uow:
            await uow.enqueue(twice)
        assert wakes.count == 1
    finally:
        await conn.close()
    assert await _outbox_ids(uow_pool, [first, twice]) == [twice.event_id]


async def test_a_unit_ending_as_another_role_writes_its_events_as_service_role(
    uow_pool: asyncpg.Pool,
) -> None:
    event = _event()
    # As a group commit does: each item takes its caller, whose role cannot write the outbox.
    async with unit_of_work(uow_pool, Caller.user(uuid.uuid4())) as uow:
        await uow.enqueue(event)
        assert await uow.conn.fetchval("SELECT current_user") == "authenticated"
    assert await _outbox_ids(uow_pool, [event]) == [event.event_id]


async def test_outside_a_unit_of_work_the_events_are_written_at_once(
    uow_pool: asyncpg.Pool,
) -> None:
    plain, elsewhere = _event(), _event()
    async with uow_pool.acquire() as conn:
        # A transaction without a unit (the CLI's replay), and a unit in a transaction that
        # ``transaction`` did not begin: no commit of ours to carry them, so written now.
        async with transaction(conn, Caller.service()):
            await enqueue(conn, plain)
            assert await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE event_id = $1", plain.event_id
            )
        async with conn.transaction():
            await conn.execute("SET LOCAL ROLE service_role")
            with writing_events(conn) as unit:
                await unit.enqueue(elsewhere)
            assert unit.wrote_events
            assert await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE event_id = $1", elsewhere.event_id
            )
    assert await _outbox_ids(uow_pool, [plain, elsewhere]) == [plain.event_id, elsewhere.event_id]
