"""Row-level security at the SQL level: the matrix, its mutation test, and the login role."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import asyncpg
import pytest

from shared.db import Caller, connect, take_caller, transaction
from tests.cases.rls_matrix import World, build_cases, evaluate, seed_world

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.conftest import DatabaseFactory


@pytest.fixture(scope="module")
async def rls_dsn(make_database: DatabaseFactory) -> str:
    """A database of the matrix's own, so that "sees everything" means exact row counts."""
    return await make_database()


@pytest.fixture(scope="module")
async def admin(rls_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(rls_dsn)
    yield conn
    await conn.close()


@pytest.fixture(scope="module")
async def world(admin: asyncpg.Connection) -> World:
    return await seed_world(admin)


async def test_every_role_sees_and_writes_exactly_what_the_rules_allow(
    admin: asyncpg.Connection, world: World
) -> None:
    failures = await evaluate(admin, world)
    assert failures == [], "\n".join(failures)


def test_matrix_covers_every_table_operation_and_caller(world: World) -> None:
    cases = build_cases(world)
    covered = {(case.table, case.operation.split()[0], case.caller) for case in cases}
    for table in (
        "orders",
        "song_variants",
        "failed_jobs",
        "payments",
        "payment_webhook_events",
        "stray_charges",
    ):
        for operation in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            for caller in world.callers():
                if (table, operation, caller) in covered:
                    continue
                # service_role's inserts into failed_jobs are the dead-letter service's job,
                # exercised by its own tests; every other combination must be in the matrix.
                assert (table, operation, caller) == ("failed_jobs", "INSERT", "service_role")


# Each mutation loosens one rule the way a careless migration might; the matrix must notice.
MUTATIONS = {
    "anon share policy opened to every row": [
        "ALTER POLICY song_variants_shared_select ON song_variants USING (true)",
    ],
    "owner insert check dropped": [
        "ALTER POLICY orders_owner_insert ON orders WITH CHECK (true)",
    ],
    "owner select opened to every user": [
        "ALTER POLICY orders_owner_select ON orders USING (true)",
    ],
    "status made writable by users": [
        "GRANT UPDATE (status) ON song_variants TO authenticated",
        "CREATE POLICY loose ON song_variants FOR UPDATE TO authenticated USING (true)",
    ],
    "failed_jobs readable by users": [
        "GRANT SELECT ON failed_jobs TO authenticated",
        "CREATE POLICY loose ON failed_jobs FOR SELECT TO authenticated USING (true)",
    ],
    "payments readable by every user": [
        "ALTER POLICY payments_owner_select ON payments USING (true)",
    ],
    "payments writable by their owner": [
        "GRANT UPDATE (status, paid_at) ON payments TO authenticated",
        "CREATE POLICY loose ON payments FOR UPDATE TO authenticated USING (true)",
    ],
    "payments readable by anon": [
        "GRANT SELECT ON payments TO anon",
        "CREATE POLICY loose ON payments FOR SELECT TO anon USING (true)",
    ],
    "row-level security disabled on payments": [
        "ALTER TABLE payments DISABLE ROW LEVEL SECURITY",
    ],
    "row-level security disabled on song_variants": [
        "ALTER TABLE song_variants DISABLE ROW LEVEL SECURITY",
    ],
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
async def test_matrix_fails_when_a_rule_is_loosened(
    admin: asyncpg.Connection, world: World, mutation: str
) -> None:
    transaction = admin.transaction()
    await transaction.start()
    try:
        for statement in MUTATIONS[mutation]:
            await admin.execute(statement)
        failures = await evaluate(admin, world)
    finally:
        await transaction.rollback()
    assert failures, f"the matrix did not notice: {mutation}"
    assert await evaluate(admin, world) == [], "the rollback did not restore the rules"


async def test_anon_share_lookup_returns_only_the_shared_variant_and_its_order(
    rls_dsn: str, world: World
) -> None:
    conn = await connect(rls_dsn)
    try:
        async with transaction(conn, Caller.anon(world.token_a1)):
            row = await conn.fetchrow(
                "SELECT v.id, v.variant_number, o.recipient_name, o.occasion"
                " FROM song_variants v JOIN orders o ON o.id = v.order_id"
            )
            count = await conn.fetchval("SELECT count(*) FROM song_variants")
    finally:
        await conn.close()
    assert row is not None
    assert (row["id"], row["variant_number"], row["recipient_name"]) == (
        world.variants_a[0],
        1,
        "Ada",
    )
    assert count == 1


async def test_claims_setting_left_empty_by_a_previous_transaction_reads_as_no_user(
    rls_dsn: str, world: World
) -> None:
    # After a setting was used once in a session it reads '' rather than NULL: auth.uid()
    # must then be NULL, not an error, and the caller sees nothing.
    conn = await connect(rls_dsn)
    try:
        async with transaction(conn, Caller.user(world.user_a)):
            assert await conn.fetchval("SELECT count(*) FROM orders") == 1
        async with conn.transaction():
            await conn.execute("SET LOCAL ROLE authenticated")
            assert await conn.fetchval("SELECT current_setting('request.jwt.claims', true)") == ""
            assert await conn.fetchval("SELECT auth.uid()") is None
            assert await conn.fetchval("SELECT count(*) FROM orders") == 0
    finally:
        await conn.close()


async def test_a_non_superuser_login_role_gets_nothing_without_an_app_role(
    admin: asyncpg.Connection, rls_dsn: str, world: World
) -> None:
    login = f"svc_{uuid.uuid4().hex[:8]}"
    await admin.execute(f"CREATE ROLE {login} LOGIN NOSUPERUSER NOBYPASSRLS")
    await admin.execute(
        f"GRANT anon, authenticated, service_role TO {login} WITH INHERIT FALSE, SET TRUE"
    )
    conn = await connect(rls_dsn.replace("postgres@", f"{login}@"))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT id FROM orders")
        async with conn.transaction():
            await take_caller(conn, Caller.user(world.user_b))
            assert await conn.fetchval("SELECT count(*) FROM orders") == 1
            # Dropping the app role inside the transaction leads back to nothing, not to more.
            await conn.execute("RESET ROLE")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch("SELECT id FROM orders")
    finally:
        await conn.close()
