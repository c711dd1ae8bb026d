"""Variants: the +1 upsell, retry of a failed variant, and the signed link to a variant's audio."""

import datetime as dt
import uuid
from dataclasses import dataclass

import asyncpg

from services.api.common.billing import Billing, open_checkout
from services.api.common.database import Database
from services.api.common.problems import Conflict, NotFound
from services.api.common.signing import UrlSigner
from services.api.orders.schemas import AudioLink, VariantOut
from services.api.orders.views import PAYMENT_COLUMNS, VARIANT_COLUMNS, payment_out, variant_out
from shared.db import Caller, act_as_service
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
    order returns the first request's variant (and payment) instead of making another."""
    async with db.run_as(caller) as conn:
        if await conn.fetchval("SELECT 1 FROM orders WHERE id = $1", order_id) is None:
            raise NotFound("no such order")
        # Two upsells of one order at once: the second waits and then sees the first's variant.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 5))", str(order_id))
        if idempotency_key is not None:
            earlier = await _earlier_upsell(conn, order_id, idempotency_key, billing.on)
            if earlier is not None:
                return Upsold(earlier, replayed=True)
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
            bought = payment_out(payment)
        else:
            bought = None
            await rearm_order(conn, order_id)
            await enqueue(
                conn,
                VariantRequested(
                    variant_id=row["id"],
                    order_id=order_id,
                    variant_number=row["variant_number"],
                    reason=RequestReason.UPSELL,
                    correlation_id=correlation_id,
                ),
            )
    if bought is None:
        return Upsold(variant_out(row), replayed=False)
    if bought.checkout_url is None:
        url = await open_checkout(db, billing, bought.id)
        bought = bought.model_copy(update={"checkout_url": url})
    return Upsold(variant_out({**dict(row), "payment_id": bought.id}, bought), replayed=False)


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


async def retry(
    db: Database, caller: Caller, variant_id: uuid.UUID, *, correlation_id: str
) -> VariantOut:
    """A failed variant goes back to pending with its attempts reset, and is queued again."""
    async with db.run_as(caller) as conn:
        seen = await conn.fetchrow(
            "SELECT v.status, o.user_id FROM song_variants v JOIN orders o ON o.id = v.order_id"
            " WHERE v.id = $1",
            variant_id,
        )
        if seen is None:
            raise NotFound("no such variant")
        await act_as_service(conn)
        try:
            requeued = await requeue_failed_variant(
                conn, variant_id, reason=RequestReason.RETRY, correlation_id=correlation_id
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
