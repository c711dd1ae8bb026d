"""Variants: the +1 upsell, retry of a failed variant, and the signed link to a variant's audio."""

import datetime as dt
import uuid
from dataclasses import dataclass

import asyncpg

from services.api.common.billing import Billing, open_checkout
from services.api.common.database import Database
from services.api.common.problems import Conflict, NotFound
from services.api.common.signing import UrlSigner
from services.api.orders.schemas import AudioLink, PaymentOut, VariantOut
from services.api.orders.views import PAYMENT_COLUMNS, VARIANT_COLUMNS, payment_out, variant_out
from shared.db import Caller, act_as_service, take_caller
from shared.enums import GenerationStatus, PaymentKind, RequestReason
from shared.events import VariantRequested
from shared.lifecycle import rearm_order
from shared.outbox import enqueue
from shared.payments.ledger import open_payment
from shared.requeue import ReplayError, requeue_failed_variant

__all__ = ["MAX_VARIANTS", "Upsold", "audio_link", "media_path", "retry", "upsell"]

MAX_VARIANTS = 5


def media_path(storage_path: str) -> str:
    """The URL path that serves a stored object."""
    return f"/media/{storage_path}"


@dataclass(frozen=True, slots=True)
class Upsold:
    variant: VariantOut
    replayed: bool


@dataclass(frozen=True, slots=True)
class _UpsellRequest:
    caller: Caller
    order_id: uuid.UUID
    correlation_id: str
    billing: Billing
    idempotency_key: str | None


@dataclass(frozen=True, slots=True)
class _Upsell:
    """What an upsell's transaction did: the earlier variant replayed, or a new one (with its
    payment, payments on) and the events to write."""

    replayed: VariantOut | None
    row: asyncpg.Record | None = None
    bought: PaymentOut | None = None
    events: tuple[VariantRequested, ...] = ()


async def upsell(
    db: Database,
    caller: Caller,
    order_id: uuid.UUID,
    *,
    correlation_id: str,
    billing: Billing,
    idempotency_key: str | None = None,
) -> Upsold:
    """Add the order's next variant and queue it; 409 when it already has five. With payments
    on, only once the order is paid and no other upsell awaits payment: the variant waits for
    a payment of its own, which queues it when paid. The same ``idempotency_key`` on the same
    order returns the first request's variant (and payment) instead of making another.

    Upsells arriving together share a transaction (``_upsell_group``); one the group did not
    write (the group failed: one of them was refused, say) is written alone, as always."""
    request = _UpsellRequest(caller, order_id, correlation_id, billing, idempotency_key)
    done = await db.group(_upsell_group).submit(request)
    if done is None:
        async with db.run_as(caller) as conn:
            done = await _upsell_in(conn, request)
            await enqueue(conn, *done.events)
    if done.replayed is not None:
        return Upsold(done.replayed, replayed=True)
    assert done.row is not None
    bought = done.bought
    if bought is None:
        return Upsold(variant_out(done.row), replayed=False)
    if bought.checkout_url is None:
        # After the commit, as alone: the provider is never called inside a transaction.
        url = await open_checkout(db, billing, bought.id)
        bought = bought.model_copy(update={"checkout_url": url})
    return Upsold(variant_out({**dict(done.row), "payment_id": bought.id}, bought), replayed=False)


async def _upsell_group(
    conn: asyncpg.Connection, requests: list[_UpsellRequest]
) -> list[_Upsell | None]:
    """The upsells of one group, each under its own caller (row-level security checks its
    rows as alone), then every event in one outbox insert. Payments on go through the group
    too: their payment rows are written like the variant, their checkouts opened after the
    commit by each request, as alone. A refusal (404, 409) fails the group: each goes alone."""
    done: list[_Upsell | None] = []
    for request in requests:
        await take_caller(conn, request.caller)
        done.append(await _upsell_in(conn, request))
    await act_as_service(conn)
    await enqueue(conn, *(event for item in done if item is not None for event in item.events))
    return done


async def _upsell_in(conn: asyncpg.Connection, request: _UpsellRequest) -> _Upsell:
    """One upsell in the current transaction, begun as its caller (service_role once the
    caller's own rows are in, when it made a variant); its events are the caller's to write."""
    order_id, billing, idempotency_key = request.order_id, request.billing, request.idempotency_key
    if await conn.fetchval("SELECT 1 FROM orders WHERE id = $1", order_id) is None:
        raise NotFound("no such order")
    # Two upsells of one order at once: the second waits and then sees the first's variant.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 5))", str(order_id))
    if idempotency_key is not None:
        earlier = await _earlier_upsell(conn, order_id, idempotency_key, billing.on)
        if earlier is not None:
            return _Upsell(replayed=earlier)
    if billing.on:
        await _require_paid_order(conn, order_id)
    highest = await conn.fetchval(
        "SELECT coalesce(max(variant_number), 0) FROM song_variants WHERE order_id = $1",
        order_id,
    )
    if highest >= MAX_VARIANTS:
        raise Conflict(f"the order already has {MAX_VARIANTS} variants")
    row = await conn.fetchrow(
        "INSERT INTO song_variants (order_id, variant_number, idempotency_key)"
        f" VALUES ($1, $2, $3) RETURNING {VARIANT_COLUMNS}",
        order_id,
        highest + 1,
        idempotency_key,
    )
    await act_as_service(conn)
    if billing.terms is not None:
        payment = await open_payment(
            conn,
            billing.terms,
            order_id=order_id,
            kind=PaymentKind.UPSELL,
            amount=billing.terms.price_upsell,
            variant_ids=[row["id"]],
        )
        return _Upsell(replayed=None, row=row, bought=payment_out(payment))
    await rearm_order(conn, order_id)
    requested = VariantRequested(
        variant_id=row["id"],
        order_id=order_id,
        variant_number=row["variant_number"],
        reason=RequestReason.UPSELL,
        correlation_id=request.correlation_id,
    )
    return _Upsell(replayed=None, row=row, events=(requested,))


async def _earlier_upsell(
    conn: asyncpg.Connection, order_id: uuid.UUID, key: str, with_payments: bool
) -> VariantOut | None:
    row = await conn.fetchrow(
        f"SELECT {VARIANT_COLUMNS} FROM song_variants WHERE order_id = $1 AND idempotency_key = $2",
        order_id,
        key,
    )
    if row is None:
        return None
    payment = None
    if with_payments and row["payment_id"] is not None:
        paid_for = await conn.fetchrow(
            f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1", row["payment_id"]
        )
        payment = None if paid_for is None else payment_out(paid_for)
    return variant_out(row, payment)


async def _require_paid_order(conn: asyncpg.Connection, order_id: uuid.UUID) -> None:
    statuses = await conn.fetch(
        "SELECT kind::text AS kind, status::text AS status FROM payments WHERE order_id = $1",
        order_id,
    )
    own = next((row["status"] for row in statuses if row["kind"] == "order"), None)
    if own != "paid":
        raise Conflict(f"the order's payment is {own or 'missing'}: upsells follow a paid order")
    if any(row["kind"] == "upsell" and row["status"] == "awaiting" for row in statuses):
        raise Conflict("another upsell of this order awaits payment: pay or let it lapse first")


@dataclass(frozen=True, slots=True)
class _RetryRequest:
    caller: Caller
    variant_id: uuid.UUID
    correlation_id: str


async def retry(
    db: Database, caller: Caller, variant_id: uuid.UUID, *, correlation_id: str
) -> VariantOut:
    """A failed variant goes back to pending with its attempts reset, and is queued again.
    Retries arriving together share a transaction; one the group did not write goes alone."""
    request = _RetryRequest(caller, variant_id, correlation_id)
    retried = await db.group(_retry_group).submit(request)
    if retried is None:
        async with db.run_as(caller) as conn:
            retried = await _retry_in(conn, request)
    return retried


async def _retry_group(
    conn: asyncpg.Connection, requests: list[_RetryRequest]
) -> list[VariantOut | None]:
    """The retries of one group, each seen under its own caller (a 404 or 409 fails the
    group: each goes alone). Each writes its own outbox row (``requeue_failed_variant``, shared
    with the CLI's replay), in the group's transaction."""
    retried: list[VariantOut | None] = []
    for request in requests:
        await take_caller(conn, request.caller)
        retried.append(await _retry_in(conn, request))
    return retried


async def _retry_in(conn: asyncpg.Connection, request: _RetryRequest) -> VariantOut:
    """One retry in the current transaction, begun as its caller."""
    seen = await conn.fetchrow(
        "SELECT v.status, o.user_id FROM song_variants v JOIN orders o ON o.id = v.order_id"
        " WHERE v.id = $1",
        request.variant_id,
    )
    if seen is None:
        raise NotFound("no such variant")
    await act_as_service(conn)
    try:
        requeued = await requeue_failed_variant(
            conn,
            request.variant_id,
            reason=RequestReason.RETRY,
            correlation_id=request.correlation_id,
        )
    except ReplayError as error:
        raise Conflict(str(error)) from error
    return variant_out(requeued.variant)


async def audio_link(
    db: Database, caller: Caller, signer: UrlSigner, variant_id: uuid.UUID
) -> AudioLink:
    """A signed URL to a complete variant's audio; 409 while it is not complete."""
    async with db.run_as(caller) as conn:
        row = await conn.fetchrow(
            "SELECT status, storage_path FROM song_variants WHERE id = $1", variant_id
        )
    if row is None:
        raise NotFound("no such variant")
    if row["status"] != GenerationStatus.COMPLETE or not row["storage_path"]:
        raise Conflict(f"the variant is {row['status']}, not complete")
    signed = signer.sign_path(media_path(row["storage_path"]))
    return AudioLink(
        url=signed.url, expires_at=dt.datetime.fromtimestamp(signed.expires_at, dt.UTC)
    )
