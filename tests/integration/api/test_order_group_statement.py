"""A group of orders is one statement outside any transaction (migration 0120's
``api.create_orders``, through ``Database.committing``): no BEGIN or COMMIT is sent, the relay is
woken once after it, the outbox holds exactly the events of the orders it made, in order, and
row-level security still checks every order under its own caller (one refused fails the whole
statement, nothing of it written)."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson
import pytest

from services.api.common.database import Database
from services.api.orders.queries import CreatedOrder, create_order
from services.api.orders.schemas import CreateOrder
from shared.db import Caller, init_connection
from tests.integration.api.support import ORDER

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.integration.api.support import World


@pytest.fixture
async def logged(database_url: str) -> AsyncIterator[tuple[asyncpg.Pool, list[str]]]:
    """A pool whose connections log every statement they send."""
    sent: list[str] = []

    async def init(conn: asyncpg.Connection) -> None:
        await init_connection(conn)
        conn.add_query_logger(lambda record: sent.append(record.query))

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4, init=init)
    assert pool is not None
    try:
        yield pool, sent
    finally:
        await pool.close()


async def _create_together(
    db: Database, orders: list[tuple[Caller, dict[str, Any], str | None]]
) -> list[CreatedOrder]:
    return await asyncio.gather(
        *(
            create_order(
                db,
                caller,
                CreateOrder.model_validate(body),
                idempotency_key=key,
                correlation_id=f"group-{n}",
            )
            for n, (caller, body, key) in enumerate(orders)
        )
    )


async def test_a_group_of_orders_is_one_statement_and_wakes_the_relay_once(
    logged: tuple[asyncpg.Pool, list[str]], world: World
) -> None:
    pool, sent = logged
    woken: list[None] = []
    db = Database(pool, lambda: woken.append(None))
    users = [uuid.uuid4() for _ in range(6)]
    sent.clear()

    made = await _create_together(db, [(Caller.user(u), ORDER, None) for u in users])

    assert [created.order.user_id for created in made] == users
    statements = [query.strip().split()[0].upper() for query in sent]
    assert "BEGIN" not in " ".join(sent).upper()
    assert "COMMIT" not in " ".join(sent).upper()
    assert sum("api.create_orders" in query for query in sent) == 1
    assert statements.count("SELECT") >= 1
    assert len(woken) == 1
    for created in made:
        assert len(await world.outbox(created.order.id)) == 4


async def test_the_outbox_holds_the_made_orders_events_in_order_and_none_for_a_taken_key(
    pool: asyncpg.Pool, world: World
) -> None:
    db = Database(pool, lambda: None)
    key = f"taken-{uuid.uuid4()}"
    first = (await _create_together(db, [(Caller.user(world.user_a), ORDER, key)]))[0]
    others = [uuid.uuid4() for _ in range(4)]
    orders: list[tuple[Caller, dict[str, Any], str | None]] = [
        (Caller.user(u), ORDER | {"recipient_name": f"R{n}", "variant_count": n + 1}, None)
        for n, u in enumerate(others)
    ]
    orders.insert(2, (Caller.user(world.user_a), ORDER, key))

    made = await _create_together(db, orders)

    replayed = made.pop(2)
    assert replayed.replayed
    assert replayed.order.id == first.order.id
    assert len(await world.outbox(first.order.id)) == 4  # nothing written again
    made_ids = [created.order.id for created in made]
    # One transaction for the four (the replay went alone, after it).
    xmins = await pool.fetch(
        "SELECT DISTINCT xmin::text FROM orders WHERE id = ANY($1::uuid[])", made_ids
    )
    assert len(xmins) == 1
    rows = await pool.fetch(
        "SELECT payload FROM outbox WHERE (payload->>'order_id')::uuid = ANY($1::uuid[])"
        " ORDER BY id",
        made_ids,
    )
    written = [
        (row["payload"]["order_id"], row["payload"]["type"], row["payload"].get("variant_number"))
        for row in rows
    ]
    expected = [
        entry
        for created in made
        for entry in [
            (str(created.order.id), "orders.created", None),
            *(
                (str(created.order.id), "variants.requested", variant.variant_number)
                for variant in created.order.variants
            ),
        ]
    ]
    assert written == expected
    for created in made:
        created_event = (await world.outbox(created.order.id))[0]
        assert created_event["variant_ids"] == [str(v.id) for v in created.order.variants]


async def test_an_order_for_another_user_than_its_caller_fails_the_whole_statement(
    pool: asyncpg.Pool,
) -> None:
    """No API path makes one (the owner is the caller's own id): the function itself refuses,
    so a member of a group can never write as another caller."""
    honest, victim = uuid.uuid4(), uuid.uuid4()
    callers = [Caller.user(honest), Caller.user(honest)]
    owners = [honest, victim]
    order_ids = [uuid.uuid4(), uuid.uuid4()]
    event_ids = [uuid.uuid4(), uuid.uuid4()]

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        await pool.fetch(
            "SELECT made, variants FROM api.create_orders($1, $2, $3, $4, $5, $6, $7, $8, $9,"
            " $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
            [caller.role.value for caller in callers],
            [orjson.dumps(dict(caller.claims)).decode() for caller in callers],
            order_ids,
            [1, 1],
            [uuid.uuid4(), uuid.uuid4()],
            owners,
            ["Ada", "Eve"],
            ["birthday", "birthday"],
            [None, None],
            ["pop", "pop"],
            ["joyful", "joyful"],
            [None, None],
            [None, None],
            ["d", "d"],
            event_ids,
            ["serenade.orders.created", "serenade.orders.created"],
            [orjson.dumps({"order_id": str(o)}).decode() for o in order_ids],
            ["{}", "{}"],
            [1, 2],
        )

    assert await pool.fetchval("SELECT count(*) FROM orders WHERE id = ANY($1)", order_ids) == 0
    assert (
        await pool.fetchval("SELECT count(*) FROM outbox WHERE event_id = ANY($1)", event_ids) == 0
    )
