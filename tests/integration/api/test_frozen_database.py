"""A PostgreSQL that stops answering (frozen, or its packets lost: drill 5) costs a request one
command timeout, not two: the transaction's ROLLBACK is not waited for on a server that did not
answer the query, and the pool recovers once the server answers again. The same for a read
(one statement outside any transaction)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from services.api.common.database import Database
from services.api.orders.queries import CreatedOrder, create_order
from services.api.orders.schemas import CreateOrder
from services.launcher import EmbeddedPostgres, migrate
from shared.db import Caller, create_pool
from tests.integration.api.support import ORDER

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

COMMAND_TIMEOUT = 1.0


@pytest.fixture
async def frozen(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedPostgres, Database]]:
    """A database of its own, and the API's unit of work on it; frozen by the test."""
    postgres = EmbeddedPostgres(tmp_path / "postgres", durable=False)
    dsn = postgres.start()
    await migrate(dsn)
    pool = await create_pool(dsn, min_size=2, max_size=2, command_timeout=COMMAND_TIMEOUT)
    try:
        yield postgres, Database(pool, lambda: None)
    finally:
        postgres.resume()
        pool.terminate()
        postgres.stop(mode="immediate")


async def _select(db: Database) -> object:
    async with db.run_as(Caller.anon()) as conn:
        return await conn.fetchval("SELECT 1")


async def test_a_frozen_database_costs_one_command_timeout_then_recovers(
    frozen: tuple[EmbeddedPostgres, Database],
) -> None:
    postgres, db = frozen
    assert await _select(db) == 1

    postgres.pause()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await _select(db)
    took = time.monotonic() - started
    postgres.resume()

    assert took < 1.5 * COMMAND_TIMEOUT  # was two: the query's, then the ROLLBACK's
    assert await _select(db) == 1


async def test_a_caller_giving_up_does_not_wait_for_the_rollback_either(
    frozen: tuple[EmbeddedPostgres, Database],
) -> None:
    postgres, db = frozen
    postgres.pause()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):  # as /ready bounds its probe
            await _select(db)
    took = time.monotonic() - started
    postgres.resume()

    assert took < 0.3 + 0.5 * COMMAND_TIMEOUT
    assert await _select(db) == 1


async def _read(db: Database) -> object:
    async with db.reading() as conn:
        return await conn.fetchval("SELECT count(*) FROM api.get_share('anon', '', '', $1)", None)


async def test_a_read_on_a_frozen_database_costs_one_command_timeout_then_recovers(
    frozen: tuple[EmbeddedPostgres, Database],
) -> None:
    postgres, db = frozen
    assert await _read(db) == 0

    postgres.pause()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await _read(db)
    took = time.monotonic() - started
    postgres.resume()

    assert took < 1.5 * COMMAND_TIMEOUT
    assert await _read(db) == 0


async def _order(db: Database) -> object:
    caller = Caller.user(uuid.uuid4())
    return await create_order(
        db, caller, CreateOrder.model_validate(ORDER), idempotency_key=None, correlation_id="c"
    )


async def test_orders_in_a_group_on_a_frozen_database_cost_one_command_timeout_all(
    frozen: tuple[EmbeddedPostgres, Database],
) -> None:
    postgres, db = frozen
    await _order(db)  # the group commit made and warm

    postgres.pause()
    started = time.monotonic()
    in_flight = [asyncio.create_task(_order(db)) for _ in range(3)]
    await asyncio.sleep(0.3)  # these three are in the group being written by now
    waiting = [asyncio.create_task(_order(db)) for _ in range(3)]
    answers = await asyncio.gather(*in_flight, *waiting, return_exceptions=True)
    took = time.monotonic() - started
    postgres.resume()

    # Every one a 503's error, and the ones that waited behind the group did not then wait a
    # command timeout of their own.
    assert [type(answer) for answer in answers] == [TimeoutError] * 6
    assert took < 1.5 * COMMAND_TIMEOUT
    made = await asyncio.gather(*(_order(db) for _ in range(3)))
    assert all(isinstance(order, CreatedOrder) for order in made)
