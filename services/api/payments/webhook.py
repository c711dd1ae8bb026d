"""``POST /v1/payments/webhook``: a Stripe event, signed, applied at most once.

The signature covers the raw body, so it is verified before anything is parsed. Each event id
is recorded in the transaction that applies it: a repeat (or a copy racing it) finds the id
taken and changes nothing. The payment's row is locked while an event is applied, so two
events about one payment act one after the other, whatever order they arrive in.
"""

import logging
import time
import uuid
from typing import Any

import asyncpg
import orjson
import stripe

from services.api.common.database import Database
from services.api.common.problems import BadRequest
from shared.db import Caller
from shared.enums import PaymentStatus
from shared.events import Event
from shared.outbox import enqueue
from shared.payments.ledger import dead_letter, lapse, lock_payment, mark_refunded, settle_paid
from shared.payments.strays import lock_stray_charge, mark_stray_refunded, record_stray_charge
from shared.rows import PaymentRow

__all__ = ["SIGNATURE_TOLERANCE", "apply_event", "sign", "verified_event"]

# Seconds a signature's timestamp may be away from now, either way (Stripe's own default).
SIGNATURE_TOLERANCE = 300
PAID_TYPES = frozenset({"checkout.session.completed", "checkout.session.async_payment_succeeded"})
LAPSE_TYPES = frozenset({"checkout.session.expired", "checkout.session.async_payment_failed"})
REFUNDED_TYPE = "charge.refunded"
_log = logging.getLogger(__name__)


def sign(body: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header for ``body`` (the local checkout's own events)."""
    header: str = stripe.WebhookSignature.generate_signature_header(
        body.decode(), secret, timestamp=timestamp
    )
    return header


def verified_event(body: bytes, header: str | None, secret: str) -> dict[str, Any]:
    """The event, once its signature is checked against the raw bytes; 400 otherwise."""
    try:
        stripe.WebhookSignature.verify_header(body, header, secret, tolerance=SIGNATURE_TOLERANCE)
    except stripe.SignatureVerificationError as error:
        raise BadRequest(f"the Stripe-Signature does not verify: {error.user_message}") from error
    except UnicodeDecodeError as error:
        raise BadRequest("the body is not UTF-8 text") from error
    assert header is not None
    # Stripe's check refuses only old timestamps; one from the future is as suspect.
    if _timestamp(header) > time.time() + SIGNATURE_TOLERANCE:
        raise BadRequest("the Stripe-Signature timestamp is in the future")
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequest("the body is not JSON") from error
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and 0 < len(event["id"]) <= 255
        and isinstance(event.get("type"), str)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        raise BadRequest("not a Stripe event: {id, type, data: {object}} expected")
    return event


def _timestamp(header: str) -> int:
    for part in header.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "t":
            return int(value)
    return 0


def _named_payment(event: dict[str, Any]) -> str | None:
    obj = event["data"]["object"]
    metadata = obj.get("metadata")
    named = obj.get("client_reference_id")
    if not named and isinstance(metadata, dict):
        named = metadata.get("payment_id")
    return named if isinstance(named, str) and named else None


async def apply_event(db: Database, event: dict[str, Any], *, correlation_id: str | None) -> str:
    """Apply a verified event; returns what happened (for the log and the response)."""
    kind = event["type"]
    if kind not in PAID_TYPES | LAPSE_TYPES | {REFUNDED_TYPE}:
        return "ignored"
    named = _named_payment(event)
    intent = event["data"]["object"].get("payment_intent")
    if named is None and not (kind == REFUNDED_TYPE and isinstance(intent, str)):
        return "ignored"  # another product on the same account
    events: list[Event] = []
    async with db.run_as(Caller.service()) as conn:
        fresh = await conn.fetchval(
            "INSERT INTO payment_webhook_events (event_id, event_type) VALUES ($1, $2)"
            " ON CONFLICT (event_id) DO NOTHING RETURNING true",
            event["id"],
            kind,
        )
        if not fresh:
            return "duplicate"
        if kind == REFUNDED_TYPE and isinstance(intent, str):
            # A second charge's refund names the payment too (its metadata): the payment
            # intent tells it apart, and the legitimate payment is left as it is.
            stray = await lock_stray_charge(conn, intent)
            if stray is not None:
                await _link_event(conn, event["id"], stray.payment_id)
                done = await mark_stray_refunded(conn, stray)
                return "second payment refunded" if done else "second payment already refunded"
        payment = await _find_payment(conn, named, intent if kind == REFUNDED_TYPE else None)
        if payment is None:
            await dead_letter(
                conn,
                message_id=f"webhook:{event['id']}",
                error_type="UnknownPayment",
                error=f"{kind} names payment {named or intent!r}, which does not exist",
                event=event,
                payment_id=None,
            )
            return "unknown payment"
        await _link_event(conn, event["id"], payment.id)
        outcome, events = await _act(conn, event, payment, correlation_id)
        await enqueue(conn, *events)
    _log.info("payment webhook %s %s: %s", event["id"], kind, outcome)
    return outcome


async def _link_event(conn: asyncpg.Connection, event_id: str, payment_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE payment_webhook_events SET payment_id = $2 WHERE event_id = $1",
        event_id,
        payment_id,
    )


async def _find_payment(
    conn: asyncpg.Connection, named: str | None, intent: str | None
) -> PaymentRow | None:
    payment_id: uuid.UUID | None = None
    if named is not None:
        try:
            payment_id = uuid.UUID(named)
        except ValueError:
            return None
    elif intent is not None:
        payment_id = await conn.fetchval(
            "SELECT id FROM payments WHERE provider_payment_intent = $1", intent
        )
    return None if payment_id is None else await lock_payment(conn, payment_id)


async def _act(
    conn: asyncpg.Connection,
    event: dict[str, Any],
    payment: PaymentRow,
    correlation_id: str | None,
) -> tuple[str, list[Event]]:
    kind = event["type"]
    if kind in PAID_TYPES:
        return await _act_paid(conn, event, payment, correlation_id)
    if kind in LAPSE_TYPES:
        if payment.status is not PaymentStatus.AWAITING:
            return f"already {payment.status}", []
        return "expired", await lapse(conn, payment, "expired", correlation_id=correlation_id)
    intent = event["data"]["object"].get("payment_intent")
    known = payment.provider_payment_intent
    if isinstance(intent, str) and known and intent != known:
        # The refund of another charge than the one that paid it (a second payment refunded
        # before its paid event came): the payment keeps its own charge, and the second one
        # is known as refunded, so its paid event asks for no refund.
        await record_stray_charge(conn, payment, intent, refunded=True)
        return "second payment refunded", []
    return "refunded", await mark_refunded(conn, payment, correlation_id=correlation_id)


async def _act_paid(
    conn: asyncpg.Connection,
    event: dict[str, Any],
    payment: PaymentRow,
    correlation_id: str | None,
) -> tuple[str, list[Event]]:
    obj = event["data"]["object"]
    if event["type"] == "checkout.session.completed" and obj.get("payment_status") != "paid":
        return "awaiting an asynchronous payment", []
    problem = _amount_problem(obj, payment)
    if problem is not None:
        await dead_letter(
            conn,
            message_id=f"webhook:{event['id']}",
            error_type="AmountMismatch",
            error=problem,
            event=event,
            payment_id=payment.id,
        )
        return "amount mismatch", []
    intent = obj.get("payment_intent")
    known = payment.provider_payment_intent
    if isinstance(intent, str) and known and intent != known:
        # Paid twice over (another payment intent for a payment already paid): that second
        # charge is refunded at once, once; the payment keeps its first charge as it was.
        made = await record_stray_charge(conn, payment, intent)
        return "second payment: refund_pending" if made else "second payment: already known", []
    return await settle_paid(
        conn,
        payment,
        payment_intent=intent if isinstance(intent, str) else None,
        correlation_id=correlation_id,
    )


def _amount_problem(obj: dict[str, Any], payment: PaymentRow) -> str | None:
    """Why a paid event's amount cannot be taken (the payment is left unpaid), or None."""
    if obj.get("amount_total") != payment.amount or obj.get("currency") != payment.currency:
        paid = f"{obj.get('amount_total')!r} {obj.get('currency')!r}"
        due = f"{payment.amount} {payment.currency}"
        return f"paid {paid}, but payment {payment.id} is {due}: left unpaid"
    return None
