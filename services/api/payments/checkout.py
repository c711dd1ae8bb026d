"""The local checkout (``SERENADE_PAYMENTS=local``, development only): a page that shows what
a payment buys and a button that pays it, by sending a signed ``checkout.session.completed``
through the same webhook code as Stripe's."""

import time
import uuid
from typing import Any

import orjson
from litestar.response import Template

from services.api.common.billing import Billing
from services.api.common.database import Database
from services.api.common.problems import Conflict, NotFound
from services.api.payments.webhook import apply_event, sign, verified_event
from shared.db import Caller
from shared.settings import PaymentsMode

__all__ = ["checkout_page", "format_amount", "pay"]

_STATUS_TEXT = {
    "awaiting": "Awaiting payment.",
    "paid": "Paid. Your songs are on their way.",
    "expired": "This payment expired unpaid.",
    "cancelled": "This order was cancelled.",
    "refund_pending": "Being refunded.",
    "refunded": "Refunded.",
}


def format_amount(amount: int, currency: str) -> str:
    """``2900, "eur"`` -> ``29.00 EUR`` (every currency serenade prices in has cents)."""
    return f"{amount // 100}.{amount % 100:02d} {currency.upper()}"


def _require_local(billing: Billing) -> None:
    if billing.terms is None or billing.terms.provider is not PaymentsMode.LOCAL:
        raise NotFound("the local checkout is off (SERENADE_PAYMENTS is not local)")


async def _payment(db: Database, payment_id: uuid.UUID) -> dict[str, Any]:
    async with db.run_as(Caller.service()) as conn:
        row = await conn.fetchrow(
            "SELECT p.id, p.kind::text AS kind, p.status::text AS status, p.amount, p.currency,"
            " o.recipient_name, o.occasion::text AS occasion,"
            " (SELECT count(*) FROM song_variants v WHERE v.payment_id = p.id) AS variants"
            " FROM payments p JOIN orders o ON o.id = p.order_id WHERE p.id = $1",
            payment_id,
        )
    if row is None:
        raise NotFound("no such payment")
    return dict(row)


async def checkout_page(db: Database, billing: Billing, payment_id: uuid.UUID) -> Template:
    """The checkout page of one payment."""
    _require_local(billing)
    payment = await _payment(db, payment_id)
    count = payment["variants"]
    what = (
        f"{count} song variant{'s' if count != 1 else ''} for {payment['recipient_name']}"
        f" ({payment['occasion'].replace('_', ' ')})"
    )
    return Template(
        template_name="payments/checkout.html",
        context={
            "heading": "Pay for your song" if payment["kind"] == "order" else "Pay for one more",
            "what": what,
            "amount": format_amount(payment["amount"], payment["currency"]),
            "status": payment["status"],
            "status_text": _STATUS_TEXT[payment["status"]],
            "payable": payment["status"] == "awaiting",
            "payment_id": payment["id"],
        },
        headers={"Cache-Control": "no-store"},
    )


async def pay(db: Database, billing: Billing, payment_id: uuid.UUID) -> str:
    """Pay an awaiting payment: a signed ``checkout.session.completed`` for its amount, through
    the webhook's own verification and code. 409 unless it awaits payment."""
    _require_local(billing)
    assert billing.webhook_secret is not None
    payment = await _payment(db, payment_id)
    if payment["status"] != "awaiting":
        raise Conflict(f"payment {payment_id} is {payment['status']}, not awaiting payment")
    body = orjson.dumps(
        {
            "id": f"evt_local_{uuid.uuid4().hex}",
            "object": "event",
            "type": "checkout.session.completed",
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": f"cs_local_{payment_id.hex}",
                    "object": "checkout.session",
                    "client_reference_id": str(payment_id),
                    "metadata": {"payment_id": str(payment_id)},
                    "payment_status": "paid",
                    "status": "complete",
                    "amount_total": payment["amount"],
                    "currency": payment["currency"],
                    "payment_intent": f"pi_local_{payment_id.hex}",
                }
            },
        }
    )
    event = verified_event(body, sign(body, billing.webhook_secret), billing.webhook_secret)
    return await apply_event(db, event, correlation_id=None)
