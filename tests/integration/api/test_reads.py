"""The reads (an order, the list, a share link) in one round trip: one statement outside any
transaction, calling a function of migration 0100 that takes the caller itself. Row-level
security still decides every row, under each caller's role and claims; the bodies are what the
reads in a transaction of the caller's own gave."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
from asyncpg.connection import LoggedQuery

from services.api.common.database import Database
from services.api.common.pagination import CursorCodec
from services.api.common.signing import UrlSigner
from services.api.orders import queries
from services.api.orders.schemas import OrderOut
from services.api.orders.views import (
    ORDER_COLUMNS,
    PAYMENT_COLUMNS,
    VARIANT_COLUMNS,
    fetch_payments,
    fetch_variants,
    order_out,
)
from services.api.sharing import shares
from shared.db import Caller, caller_args, connect, create_pool, transaction
from tests.integration.api.support import SECRET, World

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import httpx


class Statements:
    """What one connection ran, through asyncpg's query logger (BEGIN and COMMIT included)."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def __call__(self, record: LoggedQuery) -> None:
        self.queries.append(record.query)


@pytest.fixture
async def one_connection(database_url: str) -> AsyncIterator[tuple[Database, Statements]]:
    """The API's Database over a pool of one connection whose statements are logged."""
    pool = await create_pool(database_url, min_size=1, max_size=1)
    statements = Statements()
    try:
        async with pool.acquire() as conn:
            conn.add_query_logger(statements)
        yield Database(pool, lambda: None), statements
    finally:
        await pool.close()


async def _read_all(db: Database, world: World, order_id: uuid.UUID, token: uuid.UUID) -> None:
    owner = Caller.user(world.user_a)
    await queries.get_order(db, owner, order_id)
    await queries.get_order(db, owner, order_id, with_payments=True)
    await queries.list_orders(db, owner, CursorCodec(SECRET), limit=2, cursor=None)
    await shares.share_view(db, UrlSigner(SECRET, ttl_seconds=60), str(token))
    await shares.share_audio_key(db, str(token))


async def test_each_read_is_one_statement_outside_any_transaction(
    client: httpx.AsyncClient, world: World, one_connection: tuple[Database, Statements]
) -> None:
    order = await world.order(client)
    order_id, variant = uuid.UUID(order["id"]), order["variants"][0]
    await world.complete(variant)
    token = uuid.UUID(variant["share_token"])
    db, statements = one_connection
    await _read_all(db, world, order_id, token)  # asyncpg prepares and learns the types once
    statements.queries.clear()

    await _read_all(db, world, order_id, token)

    assert [query.split("(")[0] for query in statements.queries] == [
        "SELECT * FROM api.get_order",
        "SELECT * FROM api.get_order",
        "SELECT * FROM api.list_orders",
        "SELECT * FROM api.get_share",
        "SELECT * FROM api.get_share",
    ]
    # The same log sees a transaction's three (BEGIN with the settings, the read, COMMIT).
    statements.queries.clear()
    async with db.run_as(Caller.user(world.user_a)) as conn:
        await conn.fetchval("SELECT count(*) FROM orders")
    assert len(statements.queries) == 3


async def _orders_of(conn: asyncpg.Connection, caller: Caller, order_ids: list[uuid.UUID]) -> Any:
    """Each order as ``caller`` reads it in one call: its id, or None when hidden."""
    seen = []
    for order_id in order_ids:
        row = await queries.read_order(conn, caller, order_id, with_payments=True)
        seen.append(None if row is None else row["id"])
    return seen


async def test_users_taking_turns_on_one_connection_each_see_only_their_own(
    client: httpx.AsyncClient, world: World, pool: asyncpg.Pool
) -> None:
    mine = uuid.UUID((await world.order(client))["id"])
    theirs_body = await client.post(
        "/v1/orders",
        json={"recipient_name": "Bo", "occasion": "wedding", "genre": "jazz"},
        headers=world.b,
    )
    theirs = uuid.UUID(theirs_body.json()["id"])
    a, b = Caller.user(world.user_a), Caller.user(world.user_b)
    async with pool.acquire() as conn:
        # More turns than the five after which PostgreSQL may settle on a generic plan, with
        # the role changing between them (which replans) and not changing (which does not).
        for _ in range(8):
            assert await _orders_of(conn, a, [mine, theirs]) == [mine, None]
            assert await _orders_of(conn, b, [mine, theirs]) == [None, theirs]
            assert await _orders_of(conn, Caller.service(), [mine, theirs]) == [mine, theirs]
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="table orders"):
                await _orders_of(conn, Caller.anon(), [mine])  # anon reads shares only
            listed = await queries.read_orders(
                conn, a, world.user_b, after=None, limit=10, with_payments=True
            )
            assert listed == [], "a user lists another's orders by naming them"
            own = await queries.read_orders(
                conn, b, world.user_b, after=None, limit=10, with_payments=False
            )
            assert [row["id"] for row in own] == [theirs]
        # Nothing of the caller outlives the call on the pooled connection.
        assert await conn.fetchval("SELECT current_user") == await conn.fetchval(
            "SELECT session_user"
        )
        assert await conn.fetchval("SELECT current_setting('request.jwt.claims', true)") == ""


async def test_another_users_order_is_404_and_service_role_reads_it(
    client: httpx.AsyncClient, world: World, service_headers: dict[str, str]
) -> None:
    order = await world.order(client)

    stranger = await client.get(f"/v1/orders/{order['id']}", headers=world.b)
    service = await client.get(f"/v1/orders/{order['id']}", headers=service_headers)
    listed = await client.get("/v1/orders", headers=world.b)

    assert stranger.status_code == 404
    assert stranger.headers["content-type"] == "application/problem+json"
    assert service.status_code == 200
    assert service.json() == order
    assert listed.json()["items"] == []


async def test_an_unknown_share_token_is_404_for_the_view_and_the_audio(
    client: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(client)
    pending = order["variants"][0]["share_token"]  # a real token, but no audio yet

    unknown = await client.get(f"/v1/share/{uuid.uuid4()}")
    no_audio = await shares_audio_status(client, pending)

    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "no such share link"
    assert no_audio == 404


async def shares_audio_status(client: httpx.AsyncClient, token: str) -> int:
    """The status of the signed share audio URL of ``token`` (signed as the API would)."""
    signed = UrlSigner(SECRET, ttl_seconds=60).sign_path(shares.share_audio_path(uuid.UUID(token)))
    return (await client.get(signed.url)).status_code


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(database_url)
    yield conn
    await conn.close()


async def test_the_read_functions_take_only_an_app_role_the_login_role_may_take(
    admin: asyncpg.Connection, database_url: str, world: World
) -> None:
    claims = caller_args(Caller.user(world.user_a))[1]
    for role in ("postgres", "pg_read_all_data", await admin.fetchval("SELECT session_user")):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="not an app role"):
            await admin.fetch(
                "SELECT * FROM api.get_order($1, $2, '', $3, false)", role, claims, uuid.uuid4()
            )
    # SECURITY INVOKER: a login role granted only authenticated cannot become service_role
    # through them.
    login = f"reader_{uuid.uuid4().hex[:8]}"
    await admin.execute(f"CREATE ROLE {login} LOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT")
    await admin.execute(f"GRANT authenticated TO {login}")
    await admin.execute(f"GRANT USAGE ON SCHEMA api TO {login}")
    await admin.execute(f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA api TO {login}")
    conn = await connect(database_url.replace("postgres@", f"{login}@"))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="service_role"):
            await conn.fetch(
                "SELECT * FROM api.get_order($1, $2, '', $3, false)",
                *caller_args(Caller.service())[:2],
                uuid.uuid4(),
            )
        # An app role itself may not call them (only the login role that owns them does).
        async with transaction(conn, Caller.user(world.user_a)):
            with pytest.raises(
                asyncpg.InsufficientPrivilegeError, match="permission denied for function"
            ):
                await conn.fetch(
                    "SELECT * FROM api.get_order('service_role', '{}', '', $1, false)",
                    uuid.uuid4(),
                )
    finally:
        await conn.close()
        await admin.execute(f"DROP OWNED BY {login}")
        await admin.execute(f"DROP ROLE {login}")


async def test_the_result_types_are_the_columns_the_api_reads(admin: asyncpg.Connection) -> None:
    """Each attribute of the read types is the table's column of that name, of its type."""

    async def attributes(type_name: str) -> list[tuple[str, str]]:
        rows = await admin.fetch(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a"
            " JOIN pg_type t ON t.typrelid = a.attrelid"
            " WHERE t.oid = $1::regtype AND a.attnum > 0 AND NOT a.attisdropped"
            " ORDER BY a.attnum",
            type_name,
        )
        return [(row["attname"], row["type"]) for row in rows]

    async def columns(table: str, names: str) -> list[tuple[str, str]]:
        found = dict(await attributes(table))
        return [(name.strip(), found[name.strip()]) for name in names.split(",")]

    assert await attributes("api.variant_out") == await columns("song_variants", VARIANT_COLUMNS)
    assert await attributes("api.payment_out") == await columns("payments", PAYMENT_COLUMNS)
    assert await attributes("api.order_out") == [
        *await columns("orders", ORDER_COLUMNS),
        ("variants", "api.variant_out[]"),
        ("payments", "api.payment_out[]"),
    ]


async def _in_a_transaction(
    pool: asyncpg.Pool, caller: Caller, order_id: uuid.UUID, *, with_payments: bool
) -> OrderOut:
    """The order read as before migration 0100: separate statements in a transaction."""
    async with transaction(pool, caller) as conn:
        order = await conn.fetchrow(f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1", order_id)
        assert order is not None
        variants = await fetch_variants(conn, [order_id])
        payments = await fetch_payments(conn, [order_id]) if with_payments else None
    return order_out(order, variants[order_id], None if payments is None else payments[order_id])


async def _add_payments(pool: asyncpg.Pool, order: dict[str, Any]) -> None:
    """A paid order payment for the first variants, an upsell lapsed unpaid for the last."""
    order_id = uuid.UUID(order["id"])
    paid, lapsed = await pool.fetch(
        "INSERT INTO payments (order_id, kind, status, amount, currency, provider, expires_at,"
        " checkout_url, paid_at, lapse_reason, created_at) VALUES"
        " ($1, 'order', 'paid', 1500, 'usd', 'local', now() + interval '1 hour',"
        "  'https://pay.example/1', now(), NULL, now() - interval '1 minute'),"
        " ($1, 'upsell', 'expired', 500, 'usd', 'local', now(), NULL, NULL, 'expired', now())"
        " RETURNING id",
        order_id,
    )
    ids = [uuid.UUID(variant["id"]) for variant in order["variants"]]
    await pool.execute(
        "UPDATE song_variants SET payment_id ="
        " CASE WHEN id = $2::uuid THEN $3::uuid ELSE $1::uuid END WHERE id = ANY($4::uuid[])",
        paid["id"],
        ids[-1],
        lapsed["id"],
        ids,
    )


async def test_bodies_are_what_the_reads_in_a_transaction_gave(
    client: httpx.AsyncClient, world: World, pool: asyncpg.Pool
) -> None:
    plain = await world.order(client, variant_count=2)
    busy = await world.order(client, variant_count=4, story=None, occasion_date=None)
    await world.complete(busy["variants"][0])
    await world.fail(busy["variants"][1]["id"])
    await world.set_status(busy["variants"][2]["id"], "generating")
    await _add_payments(pool, busy)
    db = Database(pool, lambda: None)
    owner = Caller.user(world.user_a)

    for body in (plain, busy):
        order_id = uuid.UUID(body["id"])
        for caller in (owner, Caller.service()):
            for with_payments in (False, True):
                now = await queries.get_order(db, caller, order_id, with_payments=with_payments)
                before = await _in_a_transaction(
                    pool, caller, order_id, with_payments=with_payments
                )
                assert now.model_dump_json() == before.model_dump_json()
    cursors = CursorCodec(SECRET)
    for with_payments in (False, True):
        first = await queries.list_orders(
            db, owner, cursors, limit=1, cursor=None, with_payments=with_payments
        )
        second = await queries.list_orders(
            db, owner, cursors, limit=1, cursor=first.next_cursor, with_payments=with_payments
        )
        assert [order.id for order in (*first.items, *second.items)] == [
            uuid.UUID(busy["id"]),
            uuid.UUID(plain["id"]),
        ]
        assert second.next_cursor is None
        for listed, body in ((first, busy), (second, plain)):
            before = await _in_a_transaction(
                pool, owner, uuid.UUID(body["id"]), with_payments=with_payments
            )
            assert listed.items[0].model_dump_json() == before.model_dump_json()
    assert first.items[0].status == "generating"  # the lapsed upsell's variant does not count
