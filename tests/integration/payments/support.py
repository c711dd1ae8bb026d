"""Payments under test: signed Stripe-shaped events, and what the database and outbox say."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import orjson
import stripe

if TYPE_CHECKING:
    import asyncpg
    import httpx

__all__ = [
    "WEBHOOK",
    "WEBHOOK_SECRET",
    "checkout_completed",
    "event",
    "outbox_events",
    "payment_row",
    "post_event",
    "signature",
]

WEBHOOK = "/v1/payments/webhook"
WEBHOOK_SECRET = "whsec_test_" + "w" * 32


def event(kind: str, obj: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": obj},
    }


def checkout_completed(
    payment: dict[str, Any],
    *,
    amount: int | None = None,
    currency: str | None = None,
    kind: str = "checkout.session.completed",
    payment_status: str = "paid",
    event_id: str | None = None,
) -> dict[str, Any]:
    """Stripe's event for a paid Checkout Session of ``payment`` (the API's payment object)."""
    return event(
        kind,
        {
            "id": f"cs_test_{uuid.uuid4().hex}",
            "object": "checkout.session",
            "client_reference_id": payment["id"],
            "metadata": {"payment_id": payment["id"]},
            "payment_status": payment_status,
            "amount_total": payment["amount"] if amount is None else amount,
            "currency": payment["currency"] if currency is None else currency,
            "payment_intent": f"pi_{uuid.UUID(payment['id']).hex}",
        },
        event_id=event_id,
    )


def signature(body: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    header: str = stripe.WebhookSignature.generate_signature_header(
        body.decode(), secret, timestamp=timestamp
    )
    return header


async def post_event(client: httpx.AsyncClient, body: dict[str, Any] | bytes) -> httpx.Response:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.post(
        WEBHOOK,
        content=raw,
        headers={"Stripe-Signature": signature(raw), "Content-Type": "application/json"},
    )


async def payment_row(pool: asyncpg.Pool, payment_id: str) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM payments WHERE id = $1", uuid.UUID(payment_id))
    assert row is not None
    return row


async def outbox_events(
    pool: asyncpg.Pool, order_id: str, subject: str | None = None
) -> list[dict[str, Any]]:
    """The events about ``order_id`` written to the outbox, oldest first."""
    rows = await pool.fetch(
        "SELECT subject, payload FROM outbox WHERE payload->>'order_id' = $1"
        " AND ($2::text IS NULL OR subject = $2) ORDER BY id",
        order_id,
        subject,
    )
    return [{"subject": row["subject"], **row["payload"]} for row in rows]
