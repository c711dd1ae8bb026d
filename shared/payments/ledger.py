"""A payment's state changes as conditional updates, each returning the events it causes.

Run them inside one service_role transaction, after ``lock_payment`` took the payment's row
(two webhooks for one payment then act one after the other), and write the returned events to
the outbox in that same transaction. Amounts, currency and status come from here and from the
settings (``Terms``), never from a client.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shared.enums import GenerationStatus, PaymentKind, PaymentStatus, RequestReason
from shared.events import (
    Event,
    OrderCancelled,
    PaymentRefunded,
    PaymentSucceeded,
    VariantRequested,
    VariantStatusChanged,
)
from shared.lifecycle import finalize_order_if_done
from shared.payment_rules import PAYMENTS_SERVICE, WEBHOOK_SUBJECT
from shared.rows import PaymentRow
from shared.settings import PaymentsMode, Settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    import asyncpg

__all__ = [
    "BASE_VARIANTS",
    "PAYMENT_COLUMNS",
    "Terms",
    "dead_letter",
    "lapse",
    "lock_payment",
    "mark_refunded",
    "open_payment",
    "settle_paid",
]

# The order's price covers this many variants; each one past it costs the upsell price.
BASE_VARIANTS = 3
PAYMENT_COLUMNS = (
    "id, order_id, kind, status, amount, currency, checkout_url, created_at, paid_at, lapse_reason"
)
LapseReason = Literal["cancelled", "expired"]


@dataclass(frozen=True, slots=True)
class Terms:
    """What payments cost and who takes them, from the settings (None with payments off)."""

    provider: PaymentsMode
    price_order: int
    price_upsell: int
    currency: str
    ttl: dt.timedelta
    public_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Terms | None:
        if not settings.payments_on:
            return None
        return cls(
            provider=settings.payments,
            price_order=settings.price_order,
            price_upsell=settings.price_upsell,
            currency=settings.currency,
            ttl=dt.timedelta(seconds=settings.payment_ttl),
            public_url=(settings.public_url or "").rstrip("/"),
        )

    def order_amount(self, variant_count: int) -> int:
        return self.price_order + self.price_upsell * max(0, variant_count - BASE_VARIANTS)

    def local_checkout_url(self, payment_id: uuid.UUID) -> str | None:
        """The built-in checkout's page; None for Stripe (its session gives the URL)."""
        if self.provider is PaymentsMode.LOCAL:
            return f"{self.public_url}/pay/{payment_id}"
        return None


async def open_payment(
    conn: asyncpg.Connection,
    terms: Terms,
    *,
    order_id: uuid.UUID,
    kind: PaymentKind,
    amount: int,
    variant_ids: Sequence[uuid.UUID],
) -> asyncpg.Record:
    """A new ``awaiting`` payment that buys ``variant_ids``; returns its ``PAYMENT_COLUMNS``."""
    payment_id = uuid.uuid4()
    row = await conn.fetchrow(
        "WITH made AS (INSERT INTO payments"
        " (id, order_id, kind, amount, currency, provider, checkout_url, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, now() + $8::interval)"
        f" RETURNING {PAYMENT_COLUMNS}),"
        " linked AS (UPDATE song_variants SET payment_id = $1 WHERE id = ANY($9::uuid[]))"
        " SELECT * FROM made",
        payment_id,
        order_id,
        kind.value,
        amount,
        terms.currency,
        terms.provider.value,
        terms.local_checkout_url(payment_id),
        terms.ttl,
        list(variant_ids),
    )
    assert row is not None
    return row


async def lock_payment(conn: asyncpg.Connection, payment_id: uuid.UUID) -> PaymentRow | None:
    """The payment, its row held until the transaction ends; None when there is none."""
    row = await conn.fetchrow("SELECT * FROM payments WHERE id = $1 FOR UPDATE", payment_id)
    return None if row is None else PaymentRow.model_validate(dict(row))


async def _owner(conn: asyncpg.Connection, order_id: uuid.UUID) -> uuid.UUID:
    user_id: uuid.UUID = await conn.fetchval("SELECT user_id FROM orders WHERE id = $1", order_id)
    return user_id


async def settle_paid(
    conn: asyncpg.Connection,
    payment: PaymentRow,
    *,
    payment_intent: str | None,
    correlation_id: str | None = None,
) -> tuple[str, list[Event]]:
    """The provider says it is paid (amount and currency already checked). ``awaiting``:
    paid, its variants queued, ``payments.succeeded``. Lapsed: the money goes back at once
    (``refund_pending``). Already paid or refunded: nothing. Returns (what happened, events)."""
    if payment.status is PaymentStatus.AWAITING:
        await conn.execute(
            "UPDATE payments SET status = 'paid', paid_at = now(),"
            " provider_payment_intent = coalesce($2, provider_payment_intent) WHERE id = $1",
            payment.id,
            payment_intent,
        )
        variants = await conn.fetch(
            "SELECT id, variant_number FROM song_variants"
            " WHERE payment_id = $1 AND status = 'pending' ORDER BY variant_number",
            payment.id,
        )
        reason = (
            RequestReason.CREATED if payment.kind is PaymentKind.ORDER else RequestReason.UPSELL
        )
        events: list[Event] = [
            VariantRequested(
                variant_id=row["id"],
                order_id=payment.order_id,
                variant_number=row["variant_number"],
                reason=reason,
                correlation_id=correlation_id,
            )
            for row in variants
        ]
        events.append(
            PaymentSucceeded(
                payment_id=payment.id,
                order_id=payment.order_id,
                user_id=await _owner(conn, payment.order_id),
                kind=payment.kind,
                amount=payment.amount,
                currency=payment.currency,
                variant_ids=[row["id"] for row in variants],
                correlation_id=correlation_id,
            )
        )
        return "paid", events
    if payment.status in (PaymentStatus.EXPIRED, PaymentStatus.CANCELLED):
        # Money for an order that will never be generated is never kept.
        await conn.execute(
            "UPDATE payments SET status = 'refund_pending', next_refund_at = now(),"
            " provider_payment_intent = coalesce($2, provider_payment_intent) WHERE id = $1",
            payment.id,
            payment_intent,
        )
        return "refund_pending", []
    return "unchanged", []


async def lapse(
    conn: asyncpg.Connection,
    payment: PaymentRow,
    reason: LapseReason,
    *,
    correlation_id: str | None = None,
) -> list[Event]:
    """An ``awaiting`` payment is cancelled or expires: the variants it would buy fail (never
    generated); for the order's own payment the order is cancelled (``orders.cancelled``, never
    ``orders.completed``), for an upsell only its variant fails. Anything else: nothing."""
    if payment.status is not PaymentStatus.AWAITING:
        return []
    await conn.execute(
        "UPDATE payments SET status = $2::payment_status, lapse_reason = $2 WHERE id = $1",
        payment.id,
        reason,
    )
    return await _fail_unbought_variants(conn, payment, reason, correlation_id=correlation_id)


async def _fail_unbought_variants(
    conn: asyncpg.Connection,
    payment: PaymentRow,
    error: str,
    *,
    correlation_id: str | None,
) -> list[Event]:
    user_id = await _owner(conn, payment.order_id)
    failed = await conn.fetch(
        "UPDATE song_variants SET status = 'failed', error = $2, completed_at = now()"
        " WHERE payment_id = $1 AND status = 'pending'"
        " RETURNING id, variant_number, attempts",
        payment.id,
        error,
    )
    events: list[Event] = [
        VariantStatusChanged(
            variant_id=row["id"],
            order_id=payment.order_id,
            user_id=user_id,
            variant_number=row["variant_number"],
            status=GenerationStatus.FAILED,
            attempts=row["attempts"],
            error=error,
            correlation_id=correlation_id,
        )
        for row in sorted(failed, key=lambda row: row["variant_number"])
    ]
    if payment.kind is PaymentKind.ORDER:
        # The order is cancelled: it is never announced as completed.
        await conn.execute(
            "UPDATE orders SET completion_announced_at = coalesce(completion_announced_at, now())"
            " WHERE id = $1",
            payment.order_id,
        )
        events.append(
            OrderCancelled(
                order_id=payment.order_id,
                user_id=user_id,
                reason="expired" if error == "expired" else "cancelled",
                correlation_id=correlation_id,
            )
        )
    else:
        completed = await finalize_order_if_done(
            conn, payment.order_id, correlation_id=correlation_id
        )
        if completed is not None:
            events.append(completed)
    return events


async def mark_refunded(
    conn: asyncpg.Connection, payment: PaymentRow, *, correlation_id: str | None = None
) -> list[Event]:
    """The provider says the money went back: ``refunded`` (also for refunds made in its
    dashboard), its open dead letters resolved, ``payments.refunded``. Refunded before it was
    paid: its variants are never generated either."""
    if payment.status is PaymentStatus.REFUNDED:
        return []
    await conn.execute(
        "UPDATE payments SET status = 'refunded', refunded_at = now(), next_refund_at = NULL,"
        " lapse_reason = CASE WHEN status = 'awaiting' THEN 'cancelled' ELSE lapse_reason END"
        " WHERE id = $1",
        payment.id,
    )
    await conn.execute(
        # A stray charge's dead letter is its own (shared.payments.strays), not the payment's.
        "UPDATE failed_jobs SET resolved_at = now() WHERE payment_id = $1 AND resolved_at IS NULL"
        " AND event_data->>'stray_charge_id' IS NULL",
        payment.id,
    )
    events: list[Event] = []
    if payment.status is PaymentStatus.AWAITING:
        events += await _fail_unbought_variants(
            conn, payment, "refunded", correlation_id=correlation_id
        )
    events.append(
        PaymentRefunded(
            payment_id=payment.id,
            order_id=payment.order_id,
            user_id=await _owner(conn, payment.order_id),
            amount=payment.amount,
            currency=payment.currency,
            correlation_id=correlation_id,
        )
    )
    return events


async def dead_letter(
    conn: asyncpg.Connection,
    *,
    subject: str = WEBHOOK_SUBJECT,
    message_id: str,
    error_type: str,
    error: str,
    event: Any,
    payment_id: uuid.UUID | None,
    attempts: int = 1,
) -> None:
    """A ``failed_jobs`` row of service ``payments`` (kept once per ``message_id``)."""
    await conn.execute(
        "INSERT INTO failed_jobs (subject, service, event_data, error_type, error, attempts,"
        " message_id, payment_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (message_id) DO NOTHING",
        subject,
        PAYMENTS_SERVICE,
        event,
        error_type,
        error,
        attempts,
        message_id,
        payment_id,
    )
