"""Orders: create (idempotently), list in keyset pages, read one.

Every statement runs as the caller, so row-level security decides what exists for them; the
events are written to the outbox in the same transaction, as service_role, once the caller's own
writes have passed their policies.
"""

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import orjson

from services.api.common.billing import PAYMENTS_OFF, Billing, open_checkout
from services.api.common.database import Database
from services.api.common.pagination import CursorCodec
from services.api.common.problems import Conflict, NotFound
from services.api.orders.schemas import CreateOrder, OrderOut, OrderPage
from services.api.orders.views import (
    ORDER_COLUMNS,
    VARIANT_COLUMNS,
    fetch_payments,
    fetch_variants,
    order_out,
    order_read_out,
)
from shared.db import Caller, act_as_service, caller_args
from shared.enums import PaymentKind, PaymentStatus, RequestReason
from shared.events import OrderCreated, VariantRequested
from shared.keyset import Position, page_of
from shared.outbox import enqueue
from shared.payments.ledger import lapse, lock_payment, open_payment
from shared.unit_of_work import outbox_rows, outbox_written

__all__ = [
    "IDEMPOTENCY_WINDOW",
    "CreatedOrder",
    "cancel_order",
    "create_order",
    "get_order",
    "list_orders",
    "read_order",
    "read_orders",
    "request_digest",
]

# The same key within this window returns the first order; after it, the key is free again.
IDEMPOTENCY_WINDOW = dt.timedelta(hours=24)
ORDERS_LISTING = "orders"


@dataclass(frozen=True, slots=True)
class CreatedOrder:
    order: OrderOut
    replayed: bool


class _StaleKeyError(Exception):
    """The key belongs to an order older than the window: free it, then try again."""


def request_digest(body: CreateOrder) -> str:
    """A digest of the validated body: key order and spelled-out defaults do not change it."""
    canonical = orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def _owner(caller: Caller) -> uuid.UUID:
    user_id = caller.user_id
    if user_id is None:  # the guards admit only authenticated callers, who always have one
        raise NotFound("no such user")
    return user_id


@dataclass(frozen=True, slots=True)
class _NewOrder:
    user_id: uuid.UUID
    body: CreateOrder
    key: str | None
    digest: str
    correlation_id: str


async def create_order(
    db: Database,
    caller: Caller,
    body: CreateOrder,
    *,
    idempotency_key: str | None,
    correlation_id: str,
    billing: Billing = PAYMENTS_OFF,
) -> CreatedOrder:
    """A new order with ``variant_count`` pending variants, or the earlier one for this key.

    With payments on, the order's payment is made in the same transaction and its variants
    wait for it (queued by the payment's webhook); the provider's checkout is opened after the
    commit (a provider that cannot be reached leaves ``checkout_url`` null for the worker)."""
    new = _NewOrder(_owner(caller), body, idempotency_key, request_digest(body), correlation_id)
    if billing.terms is None:
        # With orders arriving together, one transaction for them all; an order the group did
        # not write (its key taken, or the group failed) is written alone below, as always.
        # With payments on, each order goes alone: its payment (open_payment) and the checkout
        # after the commit are per order anyway, and the paid-for path is not the one under
        # load; kept to the one code path that the payment tests and drills cover.
        grouped = await db.group(_create_group, one_statement=True).submit(
            _GroupedOrder(caller, new)
        )
        if grouped is not None:
            return grouped
    try:
        result = await _create_once(db, caller, new, billing)
    except _StaleKeyError:
        await _free_stale_key(db, new.user_id, new.key)
        result = await _create_once(db, caller, new, billing)
    payment = result.order.payment
    if payment is not None and payment.checkout_url is None and payment.status == "awaiting":
        url = await open_checkout(db, billing, payment.id)
        if url is not None:
            return _with_checkout(result, url)
    return result


def _with_checkout(result: CreatedOrder, url: str) -> CreatedOrder:
    order = result.order
    assert order.payment is not None
    paid_for = order.payment.model_copy(update={"checkout_url": url})
    payments = [paid_for if p.id == paid_for.id else p for p in order.payments]
    variants = [
        v.model_copy(update={"payment": paid_for})
        if v.payment is not None and v.payment.id == paid_for.id
        else v
        for v in order.variants
    ]
    updated = order.model_copy(
        update={"payment": paid_for, "payments": payments, "variants": variants}
    )
    return CreatedOrder(updated, result.replayed)


@dataclass(frozen=True, slots=True)
class _GroupedOrder:
    caller: Caller
    new: _NewOrder


_CREATE_ORDERS = (
    "SELECT made, variants FROM api.create_orders($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
    " $11, $12, $13, $14, $15, $16, $17, $18, $19)"
)


async def _create_group(
    conn: asyncpg.Connection, items: list[_GroupedOrder]
) -> list[CreatedOrder | None]:
    """The orders of one group (payments off) in one statement outside any transaction, which
    commits as it returns (``Database.committing``): one round trip, where BEGIN, the orders,
    the outbox insert and COMMIT took four, each resumed behind the busy event loop.

    So the ids (the order's, its variants') and the events that name them are made here,
    beforehand, and sized as ``enqueue`` does (EventTooLargeError fails the group: each order
    then goes alone). ``api.create_orders`` (migration 0120) inserts each order with its
    variants under its own caller's role and claims (``create_order_as``: row-level security
    checks every row as in ``_create_once``), then as service_role the outbox rows of the
    orders it made, in this order. None for an order whose key was taken (already, or by an
    earlier order of the group): it is answered alone after this commit, by
    ``_create_once`` (a replay, or 409)."""
    order_ids = [uuid.uuid4() for _ in items]
    variant_ids = [[uuid.uuid4() for _ in range(item.new.body.variant_count)] for item in items]
    events: list[OrderCreated | VariantRequested] = []
    event_orders: list[int] = []
    for number, (item, order_id, ids) in enumerate(
        zip(items, order_ids, variant_ids, strict=True), start=1
    ):
        made = _order_events(item.new, order_id, ids)
        events.extend(made)
        event_orders.extend([number] * len(made))
    outbox = outbox_rows(events)
    rows = await conn.fetch(
        _CREATE_ORDERS,
        [item.caller.role.value for item in items],
        [orjson.dumps(dict(item.caller.claims)).decode() for item in items],
        order_ids,
        [len(ids) for ids in variant_ids],
        [variant_id for ids in variant_ids for variant_id in ids],
        [item.new.user_id for item in items],
        [item.new.body.recipient_name for item in items],
        [item.new.body.occasion.value for item in items],
        [item.new.body.occasion_date for item in items],
        [item.new.body.genre.value for item in items],
        [item.new.body.mood.value for item in items],
        [item.new.body.story for item in items],
        [item.new.key for item in items],
        [item.new.digest for item in items],
        *outbox,
        event_orders,
    )
    results: list[CreatedOrder | None] = []
    for row in rows:
        order = row["made"]
        if order is None:
            results.append(None)
            continue
        variants = sorted(row["variants"], key=lambda variant: variant["variant_number"])
        results.append(CreatedOrder(order_out(order, variants), replayed=False))
    if any(result is not None for result in results):
        outbox_written(conn)
    return results


def _order_events(
    new: _NewOrder, order_id: uuid.UUID, variant_ids: Sequence[uuid.UUID]
) -> list[OrderCreated | VariantRequested]:
    """orders.created and each variant's request (``variant_ids`` by variant number), as
    ``_create_once`` writes them."""
    return [
        OrderCreated(
            order_id=order_id,
            user_id=new.user_id,
            variant_ids=list(variant_ids),
            correlation_id=new.correlation_id,
        ),
        *(
            VariantRequested(
                variant_id=variant_id,
                order_id=order_id,
                variant_number=number,
                reason=RequestReason.CREATED,
                correlation_id=new.correlation_id,
            )
            for number, variant_id in enumerate(variant_ids, start=1)
        ),
    ]


async def _create_once(
    db: Database, caller: Caller, new: _NewOrder, billing: Billing
) -> CreatedOrder:
    body = new.body
    async with db.run_as(caller) as conn:
        # A racing request with the same key waits here until the first commits, then finds it.
        order = await conn.fetchrow(
            "INSERT INTO orders (user_id, recipient_name, occasion, occasion_date, genre, mood,"
            " story, idempotency_key, request_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            f" ON CONFLICT (user_id, idempotency_key) DO NOTHING RETURNING {ORDER_COLUMNS}",
            new.user_id,
            body.recipient_name,
            body.occasion.value,
            body.occasion_date,
            body.genre.value,
            body.mood.value,
            body.story,
            new.key,
            new.digest,
        )
        if order is None:
            return await _replay(conn, new.user_id, new.key, new.digest, billing.on)
        variants = await conn.fetch(
            "INSERT INTO song_variants (order_id, variant_number)"
            f" SELECT $1, n FROM generate_series(1, $2::int) AS n RETURNING {VARIANT_COLUMNS}",
            order["id"],
            body.variant_count,
        )
        variants = sorted(variants, key=lambda row: row["variant_number"])
        await act_as_service(conn)
        created, *requested = _order_events(new, order["id"], [row["id"] for row in variants])
        if billing.terms is not None:
            # Nothing is queued before it is paid: the payment's webhook queues the variants.
            payment = await open_payment(
                conn,
                billing.terms,
                order_id=order["id"],
                kind=PaymentKind.ORDER,
                amount=billing.terms.order_amount(body.variant_count),
                variant_ids=[row["id"] for row in variants],
            )
            await enqueue(conn, created)
            bought = [{**dict(row), "payment_id": payment["id"]} for row in variants]
            return CreatedOrder(order_out(order, bought, [payment]), replayed=False)
        await enqueue(conn, created, *requested)
        return CreatedOrder(order_out(order, variants), replayed=False)


async def _replay(
    conn: asyncpg.Connection, user_id: uuid.UUID, key: str | None, digest: str, with_payments: bool
) -> CreatedOrder:
    existing = await conn.fetchrow(
        f"SELECT {ORDER_COLUMNS}, request_digest FROM orders"
        " WHERE user_id = $1 AND idempotency_key = $2",
        user_id,
        key,
    )
    if existing is None:
        raise Conflict("a request with this Idempotency-Key is in flight; try again")
    if existing["created_at"] < dt.datetime.now(dt.UTC) - IDEMPOTENCY_WINDOW:
        raise _StaleKeyError
    if existing["request_digest"] != digest:
        raise Conflict("this Idempotency-Key was used with a different request body")
    variants = await fetch_variants(conn, [existing["id"]])
    payments = await fetch_payments(conn, [existing["id"]]) if with_payments else None
    return CreatedOrder(
        order_out(
            existing,
            variants[existing["id"]],
            None if payments is None else payments[existing["id"]],
        ),
        replayed=True,
    )


async def _free_stale_key(db: Database, user_id: uuid.UUID, key: str | None) -> None:
    """The system forgets a key older than the window (the old order keeps everything else)."""
    async with db.run_as(Caller.service()) as conn:
        await conn.execute(
            "UPDATE orders SET idempotency_key = NULL WHERE user_id = $1"
            " AND idempotency_key = $2 AND created_at < now() - $3::interval",
            user_id,
            key,
            IDEMPOTENCY_WINDOW,
        )


async def list_orders(
    db: Database,
    caller: Caller,
    cursors: CursorCodec,
    *,
    limit: int,
    cursor: str | None,
    with_payments: bool = False,
) -> OrderPage:
    """The caller's orders, newest first, ``limit`` at a time."""
    user_id = _owner(caller)
    after = cursors.decode(ORDERS_LISTING, cursor)
    async with db.reading() as conn:
        rows = await read_orders(
            conn, caller, user_id, after=after, limit=limit + 1, with_payments=with_payments
        )
    page = page_of(rows, limit)
    return OrderPage(
        items=[order_read_out(row) for row in page.rows],
        next_cursor=None if page.next is None else cursors.encode(ORDERS_LISTING, page.next),
    )


async def get_order(
    db: Database, caller: Caller, order_id: uuid.UUID, *, with_payments: bool = False
) -> OrderOut:
    """One order the caller may see (its owner, or service_role); 404 otherwise."""
    async with db.reading() as conn:
        row = await read_order(conn, caller, order_id, with_payments=with_payments)
    if row is None:
        raise NotFound("no such order")
    return order_read_out(row)


async def read_order(
    conn: asyncpg.Connection, caller: Caller, order_id: uuid.UUID, *, with_payments: bool
) -> asyncpg.Record | None:
    """The order with its variants (and payments) as ``caller`` sees it, in one round trip
    outside any transaction: ``api.get_order`` takes the caller itself (migration 0100)."""
    return await conn.fetchrow(
        "SELECT * FROM api.get_order($1, $2, $3, $4, $5)",
        *caller_args(caller),
        order_id,
        with_payments,
    )


async def read_orders(
    conn: asyncpg.Connection,
    caller: Caller,
    user_id: uuid.UUID,
    *,
    after: Position | None,
    limit: int,
    with_payments: bool,
) -> list[asyncpg.Record]:
    """``user_id``'s orders newest first after ``after``, at most ``limit``, with their
    variants (and payments), as ``caller`` sees them, in one round trip (``api.list_orders``)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT * FROM api.list_orders($1, $2, $3, $4, $5, $6, $7, $8)",
        *caller_args(caller),
        user_id,
        None if after is None else after.created_at,
        None if after is None else after.id,
        limit,
        with_payments,
    )
    return rows


async def cancel_order(
    db: Database, caller: Caller, order_id: uuid.UUID, *, correlation_id: str, billing: Billing
) -> OrderOut:
    """The owner cancels an order whose own payment awaits: it is never generated. 409 once
    it is paid (and always with payments off)."""
    if not billing.on:
        raise Conflict(
            "payments are off: an order starts generating at once and cannot be cancelled"
        )
    async with db.run_as(caller) as conn:
        if await conn.fetchval("SELECT 1 FROM orders WHERE id = $1", order_id) is None:
            raise NotFound("no such order")
        await act_as_service(conn)
        own = await conn.fetchval(
            "SELECT id FROM payments WHERE order_id = $1 AND kind = 'order'", order_id
        )
        payment = None if own is None else await lock_payment(conn, own)
        if payment is None or payment.status is not PaymentStatus.AWAITING:
            status = "not payable" if payment is None else payment.status.value
            raise Conflict(f"the order's payment is {status}: only an unpaid order is cancelled")
        events = await lapse(conn, payment, "cancelled", correlation_id=correlation_id)
        await enqueue(conn, *events)
    return await get_order(db, caller, order_id, with_payments=True)
