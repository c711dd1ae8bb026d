"""The API's order read without HTTP, side by side on one embedded PostgreSQL: the read as a
transaction (BEGIN with the caller's settings, the SELECT, COMMIT: three round trips, as before
migration 0100), the read as one statement (``api.get_order``, what ``GET /v1/orders/{id}`` runs
now), and the bench's GET floor (raw asyncpg on dedicated connections, four round trips). Both
API reads build the response model, as the handler does. They take turns in short windows, so
whatever else the machine does weighs on each alike.

    .venv/bin/python bench/bench_reads.py [--concurrency 16] [--duration 8] [--orders 200]

It prints reads per second and latency percentiles of each.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.floors import db_connections, get_order_operation  # noqa: E402
from bench.load import LoadResult, closed_loop  # noqa: E402
from bench.workload import User, make_users  # noqa: E402
from services.api.common.database import Database  # noqa: E402
from services.api.orders import queries  # noqa: E402
from services.api.orders.schemas import OrderOut  # noqa: E402
from services.api.orders.views import ORDER_WITH_VARIANTS, order_out, split_order_rows  # noqa: E402
from services.launcher import EmbeddedPostgres, create_database  # noqa: E402
from shared.db import Caller, connect, create_pool  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence


async def _seed(dsn: str, users: Sequence[User], count: int) -> list[tuple[User, uuid.UUID]]:
    """``count`` orders of three variants, spread over ``users`` (as the owner of the tables)."""
    conn = await connect(dsn)
    try:
        made = []
        for index in range(count):
            user = users[index % len(users)]
            order_id = await conn.fetchval(
                "INSERT INTO orders (user_id, recipient_name, occasion, genre, mood, story)"
                " VALUES ($1, 'Ada', 'birthday', 'pop', 'joyful', 'A story.') RETURNING id",
                user.id,
            )
            await conn.execute(
                "INSERT INTO song_variants (order_id, variant_number)"
                " SELECT $1, n FROM generate_series(1, 3) AS n",
                order_id,
            )
            made.append((user, order_id))
        return made
    finally:
        await conn.close()


async def _in_a_transaction(db: Database, caller: Caller, order_id: uuid.UUID) -> OrderOut:
    """``get_order`` as it was before migration 0100 (payments off)."""
    async with db.run_as(caller) as conn:
        rows = await conn.fetch(
            f"{ORDER_WITH_VARIANTS} WHERE o.id = $1 ORDER BY v.variant_number", order_id
        )
    order, variants = split_order_rows(rows)
    return order_out(order, variants)


def _api_read(
    db: Database, orders: Sequence[tuple[User, uuid.UUID]], *, one_statement: bool
) -> Callable[[int], Awaitable[object]]:
    turn = [0]

    async def operation(index: int) -> object:
        del index
        turn[0] += 1
        user, order_id = orders[turn[0] % len(orders)]
        caller = Caller.user(user.id)
        if one_statement:
            return await queries.get_order(db, caller, order_id)
        return await _in_a_transaction(db, caller, order_id)

    return operation


async def _measure(concurrency: int, duration: float, order_count: int) -> dict[str, LoadResult]:
    with tempfile.TemporaryDirectory() as folder:
        postgres = EmbeddedPostgres(Path(folder), durable=False)
        dsn = await create_database(postgres.start())
        try:
            users = make_users("bench-" + "x" * 40, 50)
            orders = await _seed(dsn, users, order_count)
            pool = await create_pool(dsn, min_size=concurrency, max_size=concurrency)
            db = Database(pool, lambda: None)
            try:
                async with db_connections(dsn, concurrency) as conns:
                    operations = {
                        "transaction (3 round trips)": _api_read(db, orders, one_statement=False),
                        "api.get_order (1 round trip)": _api_read(db, orders, one_statement=True),
                        "GET floor (asyncpg, 4)": get_order_operation(conns, orders),
                    }
                    return await _take_turns(operations, concurrency, duration)
            finally:
                await pool.close()
        finally:
            postgres.stop()


async def _take_turns(
    operations: dict[str, Callable[[int], Awaitable[object]]], concurrency: int, duration: float
) -> dict[str, LoadResult]:
    rounds = 4
    for operation in operations.values():  # warm: prepared statements, types, plans
        await closed_loop(operation, concurrency=concurrency, duration=1, warmup=0)
    windows: dict[str, list[LoadResult]] = {name: [] for name in operations}
    for _ in range(rounds):
        for name, operation in operations.items():
            windows[name].append(
                await closed_loop(
                    operation, concurrency=concurrency, duration=duration / rounds, warmup=0
                )
            )
    return {name: _merged(results) for name, results in windows.items()}


def _merged(results: Sequence[LoadResult]) -> LoadResult:
    """The windows of one operation as one result (latency percentiles: the windows' median)."""
    ordered = sorted(results, key=lambda result: result.latency.p50)
    middle = ordered[len(ordered) // 2]
    return LoadResult(
        operations=sum(result.operations for result in results),
        errors=sum(result.errors for result in results),
        seconds=sum(result.seconds for result in results),
        concurrency=middle.concurrency,
        latency=middle.latency,
        first_error=next((r.first_error for r in results if r.first_error), None),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of each, in all")
    parser.add_argument("--orders", type=int, default=200)
    args = parser.parse_args()
    results = asyncio.run(_measure(args.concurrency, args.duration, args.orders))
    print(f"{'read':32} {'reads/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, result in results.items():
        print(
            f"{name:32} {result.per_second:9.0f} {result.latency.p50:8.2f}"
            f" {result.latency.p99:8.2f} {result.errors:7d}"
        )


if __name__ == "__main__":
    main()
