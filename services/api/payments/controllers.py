"""``/v1/payments/webhook`` (the provider's events, signed) and ``/pay`` (the local checkout)."""

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, HeaderParameter, QueryParameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_200_OK, HTTP_303_SEE_OTHER
from pydantic import BaseModel, Field

from services.api.common.dependencies import Bill, Ctx, Db
from services.api.common.problems import NotFound, problem_responses
from services.api.payments import checkout, webhook

__all__ = ["WEBHOOK_MAX_BODY_BYTES", "CheckoutController", "PaymentWebhookController"]

# Stripe's events are a few KiB; past this a body is refused (413) before it is read whole.
WEBHOOK_MAX_BODY_BYTES = 256 * 1024

StripeSignature = Annotated[
    str | None,
    HeaderParameter(
        name="Stripe-Signature",
        max_length=4096,
        description="t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>'>",
    ),
]


class WebhookReceipt(BaseModel):
    """The event was received; ``outcome`` says what it did (a repeat does nothing)."""

    received: bool = True
    outcome: str = Field(description="What the event did, e.g. paid, duplicate, ignored.")


class PaymentWebhookController(Controller):
    path = "/v1/payments"
    tags = ("payments",)

    @post(
        "/webhook",
        operation_id="paymentWebhook",
        status_code=HTTP_200_OK,
        request_max_body_size=WEBHOOK_MAX_BODY_BYTES,
        responses=problem_responses(400, 404, 413, 503),
    )
    async def receive(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        db: Db,
        billing: Bill,
        stripe_signature: StripeSignature = None,
    ) -> WebhookReceipt:
        """A Stripe event, authenticated by its signature over the raw body (no bearer token)."""
        if billing.webhook_secret is None:
            raise NotFound("payments are off (SERENADE_PAYMENTS=off)")
        body = await request.body()
        event = webhook.verified_event(body, stripe_signature, billing.webhook_secret)
        outcome = await webhook.apply_event(db, event, correlation_id=ctx.correlation_id)
        return WebhookReceipt(outcome=outcome)


Outcome = Annotated[
    str | None, QueryParameter(max_length=20, description="paid or cancelled (Checkout's return)")
]


class CheckoutController(Controller):
    path = "/pay"

    @get("/done", operation_id="getCheckoutDone", include_in_schema=False)
    async def done(self, outcome: Outcome = None) -> Template:
        """Where Stripe Checkout sends the customer back (its success and cancel URLs)."""
        paid = outcome == "paid"
        return Template(
            template_name="payments/done.html",
            context={
                "heading": "Thank you" if paid else "Payment not completed",
                "text": "Your songs are being made once the payment is confirmed."
                if paid
                else "Nothing was charged. You can pay later from your order.",
            },
            headers={"Cache-Control": "no-store"},
        )

    # HTML for people, development only: kept out of the OpenAPI document.
    @get("/{payment_id:uuid}", operation_id="getCheckoutPage", include_in_schema=False)
    async def page(self, db: Db, billing: Bill, payment_id: FromPath[uuid.UUID]) -> Template:
        """The local checkout page: what is bought, its amount, a button that pays."""
        return await checkout.checkout_page(db, billing, payment_id)

    @post(
        "/{payment_id:uuid}",
        operation_id="payLocally",
        include_in_schema=False,
        status_code=HTTP_303_SEE_OTHER,
    )
    async def pay(self, db: Db, billing: Bill, payment_id: FromPath[uuid.UUID]) -> Redirect:
        """Pay, then back to the checkout page, which now says paid."""
        await checkout.pay(db, billing, payment_id)
        return Redirect(path=f"/pay/{payment_id}", status_code=HTTP_303_SEE_OTHER)
