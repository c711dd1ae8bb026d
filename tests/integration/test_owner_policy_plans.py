"""An owner's read of one order costs the same whether they own three orders or thousands: the
policies on variants and payments look each row's order up by its key (migration 0140), never
by hashing every order the caller owns."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import orjson

from shared.db import Caller, connect, transaction

if TYPE_CHECKING:
    import asyncpg

    from tests.conftest import DatabaseFactory

_MANY = 2000


async def _orders_of(admin: asyncpg.Connection, user: uuid.UUID, count: int) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = await admin.fetchval(
        "WITH made AS (INSERT INTO orders (user_id, recipient_name, occasion, genre)"
        " SELECT $1, 'R' || n, 'birthday', 'pop' FROM generate_series(1, $2) AS n RETURNING id),"
        " variants AS (INSERT INTO song_variants (order_id, variant_number)"
        " SELECT id, v FROM made, generate_series(1, 3) AS v)"
        " SELECT array_agg(id) FROM made",
        user,
        count,
    )
    await admin.execute(
        "INSERT INTO payments (order_id, kind, amount, currency, provider, expires_at)"
        " SELECT unnest($1::uuid[]), 'order', 500, 'eur', 'local', now() + interval '1 hour'",
        ids,
    )
    return ids


def _orders_rows_read(plan: Any) -> int:
    """Rows of ``orders`` every scan in an EXPLAIN ANALYZE (FORMAT JSON) plan produced."""
    total = 0
    nodes = [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        if node.get("Relation Name") == "orders":
            total += int(node["Actual Rows"]) * int(node["Actual Loops"])
        nodes.extend(node.get("Plans", []))
    return total


async def _plan_as(
    conn: asyncpg.Connection, user: uuid.UUID, query: str, order_id: uuid.UUID
) -> Any:
    async with transaction(conn, Caller.user(user)):
        # A generic plan, as a read function's cached plan is after its fifth call.
        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        document = await conn.fetchval(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {query}", order_id, column=0
        )
    return orjson.loads(document) if isinstance(document, str) else document


async def test_an_owner_with_thousands_of_orders_reads_one_without_touching_the_others(
    make_database: DatabaseFactory,
) -> None:
    conn = await connect(await make_database())
    try:
        owner = uuid.uuid4()
        # Statistics taken while the owner had few orders, as after a burst of new ones.
        first = await _orders_of(conn, owner, 3)
        await conn.execute("ANALYZE orders; ANALYZE song_variants; ANALYZE payments")
        await _orders_of(conn, owner, _MANY)
        for table, query in (
            ("song_variants", "SELECT id FROM song_variants WHERE order_id = $1"),
            ("payments", "SELECT id FROM payments WHERE order_id = $1"),
        ):
            plan = await _plan_as(conn, owner, query, first[0])
            rows = plan[0]["Plan"]["Actual Rows"]
            assert rows == (3 if table == "song_variants" else 1), table
            # One order looked up per row read, not the owner's thousands hashed.
            assert _orders_rows_read(plan) <= rows, (table, _orders_rows_read(plan))
    finally:
        await conn.close()
