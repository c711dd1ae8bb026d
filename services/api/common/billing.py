"""Payments as the API's features see them: the terms, the provider, the webhook secret, and
opening a payment's checkout (after the order's transaction committed, or by the payments
worker's retries when the provider could not be reached)."""

import asyncio
import logging
import uuid
from dataclasses import dataclass

import asyncpg

from services.api.common.database import Database
from shared.db import Caller
from shared.payments.ledger import Terms
from shared.payments.providers import (
    CheckoutRequest,
    PaymentProvider,
    ProviderError,
    provider_for,
)
from shared.settings import Settings

__all__ = ["CHECKOUT_WAIT_SECONDS", "PAYMENTS_OFF", "Billing", "open_checkout"]

# The order's answer waits this long for the provider; past it the worker retries.
CHECKOUT_WAIT_SECONDS = 5.0
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Billing:
    """Everything payments need; ``terms`` and ``provider`` are None with payments off."""

    terms: Terms | None
    provider: PaymentProvider | None
    webhook_secret: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Billing":
        terms = Terms.from_settings(settings)
        if terms is None:
            return cls(None, None, None)
        return cls(terms, provider_for(settings, terms), settings.require_payment_webhook_secret())

    @property
    def on(self) -> bool:
        return self.terms is not None


PAYMENTS_OFF = Billing(None, None, None)


async def open_checkout(db: Database, billing: Billing, payment_id: uuid.UUID) -> str | None:
    """The payment's checkout URL, creating the provider's session when it has none yet.
    None when the provider could not be reached (the payments worker tries again)."""
    if billing.provider is None:
        return None
    async with db.run_as(Caller.service()) as conn:
        row = await _checkout_facts(conn, payment_id)
    if row is None or row["status"] != "awaiting":
        return None
    if row["checkout_url"] is not None:
        return str(row["checkout_url"])
    request = CheckoutRequest(
        payment_id=payment_id,
        order_id=row["order_id"],
        amount=row["amount"],
        currency=row["currency"],
        description=f"serenade: a song for {row['recipient_name']} ({row['kind']})",
        expires_at=row["expires_at"],
    )
    try:
        async with asyncio.timeout(CHECKOUT_WAIT_SECONDS):
            checkout = await billing.provider.open_checkout(request)
    except (ProviderError, TimeoutError) as error:
        _log.warning("checkout for payment %s not opened yet: %s", payment_id, error)
        async with db.run_as(Caller.service()) as conn:
            await conn.execute(
                "UPDATE payments SET session_attempts = session_attempts + 1 WHERE id = $1",
                payment_id,
            )
        return None
    async with db.run_as(Caller.service()) as conn:
        url = await conn.fetchval(
            "UPDATE payments SET checkout_url = coalesce(checkout_url, $2),"
            " provider_session_id = coalesce(provider_session_id, $3),"
            " session_attempts = session_attempts + 1 WHERE id = $1 RETURNING checkout_url",
            payment_id,
            checkout.url,
            checkout.session_id,
        )
    return None if url is None else str(url)


async def _checkout_facts(conn: asyncpg.Connection, payment_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT p.order_id, p.kind::text AS kind, p.status::text AS status, p.amount,"
        " p.currency, p.checkout_url, p.expires_at, o.recipient_name"
        " FROM payments p JOIN orders o ON o.id = p.order_id WHERE p.id = $1",
        payment_id,
    )
