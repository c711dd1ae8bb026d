"""The money rules every service needs: a variant is generated only while its payment is paid,
and an order whose paid variants all ended failed is refunded by itself.

With payments off no payment row exists and ``song_variants.payment_id`` is NULL: every
function here then finds nothing to do, and nothing changes from before. Run them inside a
service_role transaction. The refund itself (the provider's call) is the API's payments
worker's job: here a payment only becomes ``refund_pending`` and due.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uuid

    import asyncpg

__all__ = [
    "LAPSED_VARIANT",
    "PAID_OR_FREE",
    "PAYMENTS_SERVICE",
    "REFUND_SUBJECT",
    "UNPAID_ORDER",
    "WEBHOOK_SUBJECT",
    "refund_if_all_paid_failed",
    "unpaid_reason",
]

# Dead letters about payments: ``failed_jobs`` rows of service ``payments``. A refund that keeps
# failing is replayable (the refund is tried again); a webhook event that could not be applied
# (amount mismatch, unknown payment) is kept for inspection only.
PAYMENTS_SERVICE = "payments"
REFUND_SUBJECT = "serenade.payments.refund"
WEBHOOK_SUBJECT = "serenade.payments.webhook"

# SQL condition (on a song_variants row ``v``): the variant's payment lapsed unpaid (cancelled
# or expired): it was never generated and counts neither for the order's status nor completion.
LAPSED_VARIANT = (
    "EXISTS (SELECT FROM payments lp WHERE lp.id = v.payment_id AND lp.lapse_reason IS NOT NULL)"
)

# SQL condition (on a song_variants row ``v``): its payment, when it has one, is paid. The
# generator claims only such variants: a request for one not paid (forged, or raced by a
# cancellation) is acknowledged and nothing is generated.
PAID_OR_FREE = (
    "NOT EXISTS (SELECT FROM payments gp WHERE gp.id = v.payment_id AND gp.status <> 'paid')"
)

# SQL condition (on an orders row ``o``): its own payment was never paid. Occasion reminders
# skip such orders; orders made with payments off have no payment and are not "unpaid".
UNPAID_ORDER = (
    "EXISTS (SELECT FROM payments up"
    " WHERE up.order_id = o.id AND up.kind = 'order' AND up.paid_at IS NULL)"
)


async def unpaid_reason(conn: asyncpg.Connection, variant_id: uuid.UUID) -> str | None:
    """Why the variant may not be generated again (its payment is not ``paid``), or None."""
    status = await conn.fetchval(
        "SELECT p.status::text FROM song_variants v JOIN payments p ON p.id = v.payment_id"
        " WHERE v.id = $1",
        variant_id,
    )
    if status is None or status == "paid":
        return None
    return (
        f"the payment for variant {variant_id} is {status}, not paid: nothing is generated"
        " that was not paid for, or was paid back"
    )


async def refund_if_all_paid_failed(conn: asyncpg.Connection, order_id: uuid.UUID) -> int:
    """Every ``paid`` payment of the order becomes ``refund_pending`` (due now) when all the
    variants it paid for ended ``failed``; returns how many. Call it once the order is final."""
    status = await conn.execute(
        """
        UPDATE payments SET status = 'refund_pending', next_refund_at = now()
        WHERE order_id = $1 AND status = 'paid'
          AND EXISTS (SELECT FROM song_variants v
                      WHERE v.order_id = $1 AND v.payment_id IS NOT NULL)
          AND NOT EXISTS (
              SELECT FROM song_variants v JOIN payments p ON p.id = v.payment_id
              WHERE v.order_id = $1 AND p.paid_at IS NOT NULL AND v.status <> 'failed')
        """,
        order_id,
    )
    return int(status.rsplit(" ", 1)[-1])
