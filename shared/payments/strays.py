"""Stray charges: a payment already paid, paid a second time by another payment intent.

The money is never kept (the contract's "Payments"): the second charge becomes a
``stray_charges`` row due for a refund at once, which the API's payments worker asks the
provider for, like a payment's refund. The payment itself is left alone: it stays as it was
(``paid``, its variants generating). The stray charge's ``charge.refunded`` is recognised by its
payment intent, so it never marks the legitimate payment refunded. Run these inside one
service_role transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.rows import PaymentRow, StrayChargeRow

if TYPE_CHECKING:
    import asyncpg

__all__ = ["lock_stray_charge", "mark_stray_refunded", "record_stray_charge"]


async def record_stray_charge(
    conn: asyncpg.Connection, payment: PaymentRow, payment_intent: str, *, refunded: bool = False
) -> bool:
    """The second charge is due for a refund now; False when it was already recorded (the
    same intent in another event: one refund, whatever the provider repeats). ``refunded``:
    its refund came first (e.g. made in the provider's dashboard), so nothing is asked for and
    its paid event, when it comes, finds it known."""
    made = await conn.fetchval(
        "INSERT INTO stray_charges (payment_id, payment_intent, amount, currency, status,"
        " next_refund_at, refunded_at)"
        " VALUES ($1, $2, $3, $4, $5::payment_status,"
        "  CASE WHEN $6 THEN NULL ELSE now() END, CASE WHEN $6 THEN now() END)"
        " ON CONFLICT (payment_intent) DO NOTHING RETURNING true",
        payment.id,
        payment_intent,
        payment.amount,
        payment.currency,
        "refunded" if refunded else "refund_pending",
        refunded,
    )
    return bool(made)


async def lock_stray_charge(conn: asyncpg.Connection, payment_intent: str) -> StrayChargeRow | None:
    """The stray charge of that payment intent, its row held; None when it is no stray."""
    row = await conn.fetchrow(
        "SELECT * FROM stray_charges WHERE payment_intent = $1 FOR UPDATE", payment_intent
    )
    return None if row is None else StrayChargeRow.model_validate(dict(row))


async def mark_stray_refunded(conn: asyncpg.Connection, stray: StrayChargeRow) -> bool:
    """The provider says the second charge went back: ``refunded``, its open dead letters
    resolved. False when it already was."""
    done = await conn.fetchval(
        "UPDATE stray_charges SET status = 'refunded', refunded_at = now(), next_refund_at = NULL"
        " WHERE id = $1 AND status <> 'refunded' RETURNING true",
        stray.id,
    )
    await conn.execute(
        "UPDATE failed_jobs SET resolved_at = now() WHERE payment_id = $1"
        " AND resolved_at IS NULL AND event_data->>'stray_charge_id' = $2",
        stray.payment_id,
        str(stray.id),
    )
    return bool(done)
