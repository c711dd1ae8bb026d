"""The row-level security matrix: who may do what to which rows, checked in PostgreSQL itself.

Each case runs one statement as one caller inside a savepoint that is always rolled back, so the
matrix leaves the data as it found it and can run inside an outer transaction (the mutation
test loosens a policy there and shows the matrix then fails).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared.db import Caller, take_caller

__all__ = ["DENIED", "ONE_ROW", "Case", "World", "build_cases", "evaluate", "seed_world"]

DENIED = "denied"
# What a statement without RETURNING that wrote one row yields.
ONE_ROW = "1 row written"


@dataclass(frozen=True)
class World:
    """The rows the matrix is about: user A's order with three variants, user B's with one."""

    user_a: uuid.UUID
    user_b: uuid.UUID
    order_a: uuid.UUID
    order_b: uuid.UUID
    variants_a: tuple[uuid.UUID, ...]
    variant_b: uuid.UUID
    token_a1: uuid.UUID
    job: uuid.UUID
    outbox_event: uuid.UUID
    payment_a: uuid.UUID
    payment_b: uuid.UUID
    webhook_event: str
    stray_charge: uuid.UUID

    def callers(self) -> dict[str, Caller]:
        return {
            "owner A": Caller.user(self.user_a),
            "user B": Caller.user(self.user_b),
            "anon, no token": Caller.anon(),
            "anon, A's variant-1 token": Caller.anon(self.token_a1),
            "anon, random token": Caller.anon(uuid.uuid4()),
            "anon, malformed token": Caller.anon("not-a-uuid'; --"),
            "service_role": Caller.service(),
        }


@dataclass(frozen=True)
class Case:
    table: str
    operation: str
    caller: str
    sql: str
    args: tuple[Any, ...]
    # The ids the statement sees or touches, or DENIED for an error (SQLSTATE 42501).
    expected: frozenset[uuid.UUID] | str

    def __str__(self) -> str:
        return f"{self.caller}: {self.operation} {self.table}"


async def seed_world(conn: asyncpg.Connection) -> World:
    """Insert the matrix's rows as the superuser that owns the schema (RLS does not apply)."""
    user_a, user_b = uuid.uuid4(), uuid.uuid4()
    order_a = await conn.fetchval(
        "INSERT INTO orders (user_id, recipient_name, occasion, genre, story)"
        " VALUES ($1, 'Ada', 'birthday', 'pop', 'a secret story') RETURNING id",
        user_a,
    )
    order_b = await conn.fetchval(
        "INSERT INTO orders (user_id, recipient_name, occasion, genre)"
        " VALUES ($1, 'Bo', 'wedding', 'jazz') RETURNING id",
        user_b,
    )
    variants_a = []
    token_a1 = None
    for number in (1, 2, 3):
        row = await conn.fetchrow(
            "INSERT INTO song_variants (order_id, variant_number) VALUES ($1, $2)"
            " RETURNING id, share_token",
            order_a,
            number,
        )
        assert row is not None
        variants_a.append(row["id"])
        token_a1 = token_a1 or row["share_token"]
    variant_b = await conn.fetchval(
        "INSERT INTO song_variants (order_id, variant_number) VALUES ($1, 1) RETURNING id", order_b
    )
    job = await conn.fetchval(
        "INSERT INTO failed_jobs (subject, service, event_data, error_type, error, message_id)"
        " VALUES ('serenade.variants.requested', 'generator', '{}'::jsonb, 'Boom', 'it broke',"
        " $1) RETURNING id",
        str(uuid.uuid4()),
    )
    outbox_event = uuid.uuid4()
    await conn.execute(
        "INSERT INTO outbox (event_id, subject, payload) VALUES ($1, 'serenade.test', '{}')",
        outbox_event,
    )
    payments = [
        await conn.fetchval(
            "INSERT INTO payments (order_id, kind, amount, currency, provider, expires_at)"
            " VALUES ($1, 'order', 2900, 'eur', 'local', now() + interval '1 day') RETURNING id",
            order_id,
        )
        for order_id in (order_a, order_b)
    ]
    payment_a, payment_b = payments
    webhook_event = f"evt_{uuid.uuid4().hex}"
    await conn.execute(
        "INSERT INTO payment_webhook_events (event_id, event_type, payment_id)"
        " VALUES ($1, 'checkout.session.completed', $2)",
        webhook_event,
        payment_a,
    )
    stray_charge = await conn.fetchval(
        "INSERT INTO stray_charges (payment_id, payment_intent, amount, currency)"
        " VALUES ($1, $2, 2900, 'eur') RETURNING id",
        payment_a,
        f"pi_{uuid.uuid4().hex}",
    )
    assert token_a1 is not None
    return World(
        user_a,
        user_b,
        order_a,
        order_b,
        tuple(variants_a),
        variant_b,
        token_a1,
        job,
        outbox_event,
        payment_a,
        payment_b,
        webhook_event,
        stray_charge,
    )


def build_cases(world: World) -> list[Case]:  # noqa: PLR0912 - one long table
    cases: list[Case] = []
    everyone = list(world.callers())
    anons = [name for name in everyone if name.startswith("anon")]
    all_variants = frozenset({*world.variants_a, world.variant_b})

    def add(table: str, op: str, caller: str, sql: str, expected: Any, *args: Any) -> None:
        outcome = expected if expected == DENIED else frozenset(expected)
        cases.append(Case(table, op, caller, sql, args, outcome))

    # ---- SELECT ------------------------------------------------------------------------
    seen_orders = {
        "owner A": {world.order_a},
        "user B": {world.order_b},
        "anon, A's variant-1 token": {world.order_a},
        "service_role": {world.order_a, world.order_b},
    }
    seen_variants = {
        "owner A": set(world.variants_a),
        "user B": {world.variant_b},
        "anon, A's variant-1 token": {world.variants_a[0]},
        "service_role": all_variants,
    }
    for caller in everyone:
        add("orders", "SELECT", caller, "SELECT id FROM orders", seen_orders.get(caller, set()))
        add(
            "song_variants",
            "SELECT",
            caller,
            "SELECT id FROM song_variants",
            seen_variants.get(caller, set()),
        )
        for table, row_id in (("failed_jobs", world.job), ("outbox", world.outbox_event)):
            column = "event_id" if table == "outbox" else "id"
            add(
                table,
                "SELECT",
                caller,
                f"SELECT {column} FROM {table}",
                {row_id} if caller == "service_role" else DENIED,
            )
    # Payments: owners read their own (through their orders), anon nothing; webhook event ids
    # are the system's alone.
    seen_payments = {
        "owner A": {world.payment_a},
        "user B": {world.payment_b},
        "service_role": {world.payment_a, world.payment_b},
    }
    for caller in everyone:
        add(
            "payments",
            "SELECT",
            caller,
            "SELECT id FROM payments",
            DENIED if caller in anons else seen_payments[caller],
        )
        add(
            "payment_webhook_events",
            "SELECT",
            caller,
            "SELECT event_id FROM payment_webhook_events",
            {world.webhook_event} if caller == "service_role" else DENIED,
        )
        # A second charge to refund is the system's and the operator's business alone; the
        # owner sees the payment it paid twice, as it was.
        add(
            "stray_charges",
            "SELECT",
            caller,
            "SELECT id FROM stray_charges",
            {world.stray_charge} if caller == "service_role" else DENIED,
        )
    # Anon reads the shared variant's order, but not the fields the share view leaves out.
    for anon in anons:
        for column in ("story", "user_id", "idempotency_key"):
            add("orders", f"SELECT {column}", anon, f"SELECT id, {column} FROM orders", DENIED)
        add("song_variants", "SELECT error", anon, "SELECT id, error FROM song_variants", DENIED)

    # ---- INSERT ------------------------------------------------------------------------
    # No RETURNING on inserts: its SELECT check would hide a loosened WITH CHECK.
    insert_order = (
        "INSERT INTO orders (user_id, recipient_name, occasion, genre)"
        " VALUES ($1, 'New', 'other', 'rock')"
    )
    add("orders", "INSERT own", "owner A", insert_order, {ONE_ROW}, world.user_a)
    add("orders", "INSERT as A", "user B", insert_order, DENIED, world.user_a)
    add("orders", "INSERT", "service_role", insert_order, {ONE_ROW}, world.user_a)
    for anon in anons:
        add("orders", "INSERT", anon, insert_order, DENIED, world.user_a)

    insert_variant = "INSERT INTO song_variants (order_id, variant_number) VALUES ($1, 4)"
    add("song_variants", "INSERT", "owner A", insert_variant, {ONE_ROW}, world.order_a)
    add("song_variants", "INSERT into A's order", "user B", insert_variant, DENIED, world.order_a)
    add("song_variants", "INSERT", "service_role", insert_variant, {ONE_ROW}, world.order_a)
    for anon in anons:
        add("song_variants", "INSERT", anon, insert_variant, DENIED, world.order_a)
    add(
        "song_variants",
        "INSERT complete",
        "owner A",
        "INSERT INTO song_variants (order_id, variant_number, status, storage_path)"
        " VALUES ($1, 4, 'complete', 'x.mp3')",
        DENIED,
        world.order_a,
    )

    insert_job = (
        "INSERT INTO failed_jobs (subject, service, event_data, error_type, error, message_id)"
        " VALUES ('s', 'x', '{}', 'E', 'e', $1)"
    )
    for caller in everyone:
        if caller != "service_role":
            add("failed_jobs", "INSERT", caller, insert_job, DENIED, str(uuid.uuid4()))

    # Amounts, currency and status never come from a client: only service_role writes them.
    insert_payment = (
        "INSERT INTO payments (order_id, kind, amount, currency, provider, expires_at)"
        " VALUES ($1, 'upsell', 1, 'eur', 'local', now())"
    )
    insert_webhook_event = (
        "INSERT INTO payment_webhook_events (event_id, event_type) VALUES ($1, 'x')"
    )
    insert_stray_charge = (
        "INSERT INTO stray_charges (payment_id, payment_intent, amount, currency)"
        " VALUES ($1, $2, 2900, 'eur')"
    )
    for caller in everyone:
        allowed: Any = {ONE_ROW} if caller == "service_role" else DENIED
        add("payments", "INSERT", caller, insert_payment, allowed, world.order_a)
        add(
            "stray_charges",
            "INSERT",
            caller,
            insert_stray_charge,
            allowed,
            world.payment_a,
            f"pi_{uuid.uuid4().hex}",
        )
        add(
            "payment_webhook_events",
            "INSERT",
            caller,
            insert_webhook_event,
            allowed,
            f"evt_{uuid.uuid4().hex}",
        )

    # ---- UPDATE ------------------------------------------------------------------------
    for column, value in (("status", "'generating'"), ("storage_path", "'other/user.mp3'")):
        sql = f"UPDATE song_variants SET {column} = {value} WHERE id = $1 RETURNING id"
        for caller in everyone:
            expected: Any = {world.variants_a[0]} if caller == "service_role" else DENIED
            add("song_variants", f"UPDATE {column}", caller, sql, expected, world.variants_a[0])
    update_order = "UPDATE orders SET recipient_name = 'Changed' WHERE id = $1 RETURNING id"
    for caller in everyone:
        expected = {world.order_a} if caller == "service_role" else DENIED
        add("orders", "UPDATE", caller, update_order, expected, world.order_a)
    update_payment = (
        "UPDATE payments SET status = 'paid', paid_at = now() WHERE id = $1 RETURNING id"
    )
    link_variant = "UPDATE song_variants SET payment_id = $2 WHERE id = $1 RETURNING id"
    update_webhook_event = (
        "UPDATE payment_webhook_events SET event_type = 'y' WHERE event_id = $1 RETURNING event_id"
    )
    for caller in everyone:
        service = caller == "service_role"
        add(
            "payments",
            "UPDATE",
            caller,
            update_payment,
            {world.payment_a} if service else DENIED,
            world.payment_a,
        )
        add(
            "song_variants",
            "UPDATE payment_id",
            caller,
            link_variant,
            {world.variants_a[0]} if service else DENIED,
            world.variants_a[0],
            world.payment_b,
        )
        add(
            "payment_webhook_events",
            "UPDATE",
            caller,
            update_webhook_event,
            {world.webhook_event} if service else DENIED,
            world.webhook_event,
        )
    update_stray = "UPDATE stray_charges SET status = 'refunded' WHERE id = $1 RETURNING id"
    for caller in everyone:
        expected = {world.stray_charge} if caller == "service_role" else DENIED
        add("stray_charges", "UPDATE", caller, update_stray, expected, world.stray_charge)
    update_job = "UPDATE failed_jobs SET resolved_at = now() WHERE id = $1 RETURNING id"
    for caller in everyone:
        expected = {world.job} if caller == "service_role" else DENIED
        add("failed_jobs", "UPDATE", caller, update_job, expected, world.job)

    # ---- DELETE ------------------------------------------------------------------------
    for table, row_id in (
        ("orders", world.order_a),
        ("song_variants", world.variants_a[0]),
        ("failed_jobs", world.job),
        ("payments", world.payment_b),
        ("stray_charges", world.stray_charge),
    ):
        sql = f"DELETE FROM {table} WHERE id = $1 RETURNING id"
        for caller in everyone:
            expected = {row_id} if caller == "service_role" else DENIED
            add(table, "DELETE", caller, sql, expected, row_id)
    delete_webhook_event = (
        "DELETE FROM payment_webhook_events WHERE event_id = $1 RETURNING event_id"
    )
    for caller in everyone:
        expected = {world.webhook_event} if caller == "service_role" else DENIED
        add(
            "payment_webhook_events",
            "DELETE",
            caller,
            delete_webhook_event,
            expected,
            world.webhook_event,
        )
    return cases


class _Rollback(Exception):  # noqa: N818 - a control-flow signal, not an error
    pass


async def _run(conn: asyncpg.Connection, caller: Caller, case: Case) -> frozenset[Any] | str:
    outcome: frozenset[Any] | str = DENIED
    try:
        async with conn.transaction():
            await take_caller(conn, caller)
            try:
                if "RETURNING" in case.sql or case.sql.startswith("SELECT"):
                    rows = await conn.fetch(case.sql, *case.args)
                    outcome = frozenset(row[0] for row in rows)
                else:
                    status = await conn.execute(case.sql, *case.args)
                    written = int(status.rsplit(" ", 1)[-1])
                    outcome = frozenset({ONE_ROW}) if written == 1 else frozenset()
            except asyncpg.InsufficientPrivilegeError:
                outcome = DENIED
            raise _Rollback  # noqa: TRY301 - leaves the savepoint, always rolled back
    except _Rollback:
        pass
    return outcome


async def evaluate(conn: asyncpg.Connection, world: World) -> list[str]:
    """Run every case; return one line per case whose outcome is not the expected one."""
    callers = world.callers()
    failures = []
    for case in build_cases(world):
        outcome = await _run(conn, callers[case.caller], case)
        if outcome != case.expected:
            failures.append(f"{case}: expected {_show(case.expected)}, got {_show(outcome)}")
    return failures


def _show(outcome: frozenset[Any] | str) -> str:
    if isinstance(outcome, str):
        return outcome
    return f"{len(outcome)} row(s)"
