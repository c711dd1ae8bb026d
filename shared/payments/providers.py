"""Who takes the money, behind one interface: the built-in ``local`` checkout, or ``stripe``.

``stripe`` talks to Stripe through its official SDK only (Checkout Sessions, refunds); its
API base can point at a test double (``SERENADE_STRIPE_API_BASE``). ``local`` needs nothing:
its checkout is the API's own ``/pay/{payment_id}`` page and its refunds settle at once.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import stripe

from shared.payments.ledger import Terms
from shared.settings import PaymentsMode, Settings

__all__ = [
    "Checkout",
    "CheckoutRequest",
    "LocalProvider",
    "PaymentProvider",
    "ProviderError",
    "StripeProvider",
    "provider_for",
    "refunded_event",
]


class ProviderError(Exception):
    """The provider could not be reached or refused; the caller retries later."""


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    payment_id: uuid.UUID
    order_id: uuid.UUID
    amount: int
    currency: str
    description: str
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Checkout:
    session_id: str | None
    url: str


class PaymentProvider(Protocol):
    name: PaymentsMode

    async def open_checkout(self, request: CheckoutRequest) -> Checkout:
        """Where the customer pays; the same payment always gets the same session."""

    async def refund(
        self,
        *,
        payment_id: uuid.UUID,
        payment_intent: str | None,
        amount: int,
        currency: str,
        stray_charge_id: uuid.UUID | None = None,
    ) -> dict[str, Any] | None:
        """Ask for the money back. Returns the ``charge.refunded`` event to apply now when the
        refund settled at once (local), None when the provider's webhook will say so.
        ``stray_charge_id``: the refund is of a second charge for the payment (another
        payment intent), not of the payment's own; it names the refund instead."""

    async def close(self) -> None:
        """Release connections (the app's shutdown)."""


def refunded_event(
    *,
    payment_id: uuid.UUID,
    payment_intent: str | None,
    amount: int,
    currency: str,
    stray_charge_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """A Stripe-shaped ``charge.refunded`` event for a payment (the local provider's refunds);
    with ``stray_charge_id``, for that second charge (its own event id)."""
    refund = stray_charge_id or payment_id
    return {
        "id": f"evt_local_refund_{refund.hex}",
        "object": "event",
        "type": "charge.refunded",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": f"ch_local_{refund.hex}",
                "object": "charge",
                "amount": amount,
                "amount_refunded": amount,
                "currency": currency,
                "refunded": True,
                "payment_intent": payment_intent,
                "metadata": {"payment_id": str(payment_id)},
            }
        },
    }


class LocalProvider:
    """The development checkout: ``/pay/{payment_id}`` on the API; refunds settle at once."""

    name = PaymentsMode.LOCAL

    def __init__(self, terms: Terms) -> None:
        self._terms = terms

    async def open_checkout(self, request: CheckoutRequest) -> Checkout:
        url = self._terms.local_checkout_url(request.payment_id)
        assert url is not None
        return Checkout(session_id=None, url=url)

    async def refund(
        self,
        *,
        payment_id: uuid.UUID,
        payment_intent: str | None,
        amount: int,
        currency: str,
        stray_charge_id: uuid.UUID | None = None,
    ) -> dict[str, Any] | None:
        return refunded_event(
            payment_id=payment_id,
            payment_intent=payment_intent,
            amount=amount,
            currency=currency,
            stray_charge_id=stray_charge_id,
        )

    async def close(self) -> None:
        return None


class _HttpxClient(stripe.HTTPXClient):
    """stripe-python's httpx client, sending the encoded form as ``content=``: it passes the
    bytes as ``data=``, which httpx 0.28 deprecates (a warning on every call; an error under
    the tests' ``filterwarnings = error``). The request on the wire is the same."""

    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Any, post_data: Any
    ) -> list[Any]:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        data = kwargs.pop("data", None)
        if isinstance(data, (bytes, str)):
            kwargs["content"] = data
        elif data:
            kwargs["data"] = data
        return [args, kwargs]


class StripeProvider:
    """Stripe Checkout through the official SDK (async calls over httpx)."""

    name = PaymentsMode.STRIPE

    def __init__(self, settings: Settings, *, timeout: float = 10.0) -> None:
        base = settings.stripe_api_base
        self._http = _HttpxClient(timeout=timeout)
        self._client = stripe.StripeClient(
            settings.require_stripe_api_key(),
            base_addresses={"api": base.rstrip("/")} if base else None,
            http_client=self._http,
            # The payments worker retries on its own schedule; one quick retry here is enough.
            max_network_retries=1,
        )
        self._success_url = _page(settings, "paid")
        self._cancel_url = _page(settings, "cancelled")

    async def open_checkout(self, request: CheckoutRequest) -> Checkout:
        metadata = {"payment_id": str(request.payment_id), "order_id": str(request.order_id)}
        params: Any = {
            "mode": "payment",
            "client_reference_id": str(request.payment_id),
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency,
                        "unit_amount": request.amount,
                        "product_data": {"name": request.description},
                    },
                }
            ],
            "expires_at": int(request.expires_at.timestamp()),
            "success_url": self._success_url,
            "cancel_url": self._cancel_url,
        }
        try:
            # The payment id as idempotency key: a retry never makes a second session.
            session = await self._client.v1.checkout.sessions.create_async(
                params, options={"idempotency_key": str(request.payment_id)}
            )
        except stripe.StripeError as error:
            raise ProviderError(f"Stripe refused or could not be reached: {error}") from error
        if not session.url:
            raise ProviderError(f"Stripe's session {session.id} has no URL")
        return Checkout(session_id=session.id, url=session.url)

    async def refund(
        self,
        *,
        payment_id: uuid.UUID,
        payment_intent: str | None,
        amount: int,
        currency: str,
        stray_charge_id: uuid.UUID | None = None,
    ) -> dict[str, Any] | None:
        if not payment_intent:
            raise ProviderError(f"payment {payment_id} has no payment intent to refund")
        del currency  # the payment intent has its currency
        metadata = {"payment_id": str(payment_id)}
        if stray_charge_id is not None:
            metadata["stray_charge_id"] = str(stray_charge_id)
        params: Any = {"payment_intent": payment_intent, "amount": amount, "metadata": metadata}
        try:
            # One refund per payment, and one per stray charge, however often it is retried.
            await self._client.v1.refunds.create_async(
                params, options={"idempotency_key": f"refund-{stray_charge_id or payment_id}"}
            )
        except stripe.StripeError as error:
            raise ProviderError(f"Stripe refused the refund: {error}") from error
        return None  # charge.refunded arrives by webhook

    async def close(self) -> None:
        await _close(self._http)


async def _close(http: stripe.HTTPXClient) -> None:
    await http.close_async()  # type: ignore[no-untyped-call]  # stripe leaves it untyped


def _page(settings: Settings, outcome: str) -> str:
    base = (settings.public_url or f"http://{settings.api_host}:{settings.api_port}").rstrip("/")
    return f"{base}/pay/done?outcome={outcome}"


def provider_for(settings: Settings, terms: Terms | None) -> PaymentProvider | None:
    """The configured provider; None with payments off."""
    if terms is None:
        return None
    if settings.payments is PaymentsMode.STRIPE:
        return StripeProvider(settings)
    return LocalProvider(terms)
