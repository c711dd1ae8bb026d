"""The events serenade publishes on NATS JetStream, their subjects and the stream.

Events are frozen pydantic models named in the past tense. Each carries ``event_id`` (also sent
as the ``Nats-Msg-Id`` header so JetStream drops duplicates), ``type`` (the subject without
``serenade.``), ``occurred_at`` and, where a request started it, ``correlation_id``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.enums import GenerationStatus, Occasion, PaymentKind, RequestReason

__all__ = [
    "CORRELATION_HEADER",
    "DEADLETTER_SUBJECTS",
    "DUPLICATE_WINDOW_SECONDS",
    "STREAM_NAME",
    "STREAM_SUBJECTS",
    "SUBJECT_DEADLETTER_PREFIX",
    "SUBJECT_OCCASION_UPCOMING",
    "SUBJECT_ORDER_CANCELLED",
    "SUBJECT_ORDER_COMPLETED",
    "SUBJECT_ORDER_CREATED",
    "SUBJECT_PAYMENT_REFUNDED",
    "SUBJECT_PAYMENT_SUCCEEDED",
    "SUBJECT_VARIANT_REQUESTED",
    "SUBJECT_VARIANT_STATUS",
    "DeadLettered",
    "Event",
    "OccasionUpcoming",
    "OrderCancelled",
    "OrderCompleted",
    "OrderCreated",
    "PaymentRefunded",
    "PaymentSucceeded",
    "VariantRequested",
    "VariantStatusChanged",
    "deadletter_subject",
]

STREAM_NAME = "SERENADE"
STREAM_SUBJECTS = ("serenade.>",)
# JetStream drops a second message with the same Nats-Msg-Id within this window.
DUPLICATE_WINDOW_SECONDS = 300

SUBJECT_ORDER_CREATED = "serenade.orders.created"
SUBJECT_VARIANT_REQUESTED = "serenade.variants.requested"
SUBJECT_VARIANT_STATUS = "serenade.variants.status"
SUBJECT_ORDER_COMPLETED = "serenade.orders.completed"
SUBJECT_OCCASION_UPCOMING = "serenade.occasions.upcoming"
SUBJECT_PAYMENT_SUCCEEDED = "serenade.payments.succeeded"
SUBJECT_PAYMENT_REFUNDED = "serenade.payments.refunded"
SUBJECT_ORDER_CANCELLED = "serenade.orders.cancelled"
SUBJECT_DEADLETTER_PREFIX = "serenade.deadletter"
DEADLETTER_SUBJECTS = f"{SUBJECT_DEADLETTER_PREFIX}.>"

# The header that carries a request's correlation id through NATS.
CORRELATION_HEADER = "X-Correlation-Id"


def deadletter_subject(service: str) -> str:
    """``serenade.deadletter.<service>``."""
    return f"{SUBJECT_DEADLETTER_PREFIX}.{service}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Event(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: ClassVar[str]

    event_id: uuid.UUID = Field(
        default_factory=uuid.uuid4,
        description="Unique id of this event; also the Nats-Msg-Id header.",
    )
    type: str = Field(description="The subject without the `serenade.` prefix.")
    occurred_at: dt.datetime = Field(
        default_factory=_now, description="When it happened (RFC 3339)."
    )
    correlation_id: str | None = Field(
        default=None, description="Id of the HTTP request that started it, when one did."
    )

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    def headers(self) -> dict[str, str]:
        """NATS headers: the dedupe id and, when known, the correlation id."""
        headers = {"Nats-Msg-Id": str(self.event_id)}
        if self.correlation_id:
            headers[CORRELATION_HEADER] = self.correlation_id
        return headers


class OrderCreated(Event):
    """An order was accepted and its variants are queued."""

    subject: ClassVar[str] = SUBJECT_ORDER_CREATED
    type: Literal["orders.created"] = "orders.created"
    order_id: uuid.UUID = Field(description="The new order.")
    user_id: uuid.UUID = Field(description="Its owner.")
    variant_ids: list[uuid.UUID] = Field(description="Its variants, by variant number.")


class VariantRequested(Event):
    """A variant is to be generated (new order, upsell, retry or replay)."""

    subject: ClassVar[str] = SUBJECT_VARIANT_REQUESTED
    type: Literal["variants.requested"] = "variants.requested"
    variant_id: uuid.UUID = Field(description="The variant to generate.")
    order_id: uuid.UUID = Field(description="Its order.")
    variant_number: int = Field(ge=1, le=5, description="1-5 within the order.")
    reason: RequestReason = Field(description="Why it was queued.")


class VariantStatusChanged(Event):
    """A variant's status changed; published on every change, in the order of the changes."""

    subject: ClassVar[str] = SUBJECT_VARIANT_STATUS
    type: Literal["variants.status"] = "variants.status"
    variant_id: uuid.UUID = Field(description="The variant.")
    order_id: uuid.UUID = Field(description="Its order.")
    user_id: uuid.UUID = Field(description="The order's owner.")
    variant_number: int = Field(ge=1, le=5, description="1-5 within the order.")
    status: GenerationStatus = Field(description="The new status.")
    attempts: int = Field(ge=0, description="Generation attempts made so far.")
    error: str | None = Field(default=None, description="The last error, when there was one.")


class OrderCompleted(Event):
    """Every variant of an order is final; sent once each time the order becomes final."""

    subject: ClassVar[str] = SUBJECT_ORDER_COMPLETED
    type: Literal["orders.completed"] = "orders.completed"
    order_id: uuid.UUID = Field(description="The order.")
    user_id: uuid.UUID = Field(description="Its owner.")
    status: Literal["complete", "failed"] = Field(
        description="`complete` when every variant is complete, `failed` when one failed."
    )


class OccasionUpcoming(Event):
    """An order's occasion comes round again soon (retention reminders)."""

    subject: ClassVar[str] = SUBJECT_OCCASION_UPCOMING
    type: Literal["occasions.upcoming"] = "occasions.upcoming"
    order_id: uuid.UUID = Field(description="The order.")
    user_id: uuid.UUID = Field(description="Its owner.")
    occasion: Occasion = Field(description="The occasion.")
    occasion_date: dt.date = Field(description="The date given on the order.")
    next_date: dt.date = Field(description="Its next anniversary.")
    days_until: int = Field(ge=0, description="Days from today to next_date.")


class PaymentSucceeded(Event):
    """A payment was paid and the variants it buys are queued."""

    subject: ClassVar[str] = SUBJECT_PAYMENT_SUCCEEDED
    type: Literal["payments.succeeded"] = "payments.succeeded"
    payment_id: uuid.UUID = Field(description="The payment.")
    order_id: uuid.UUID = Field(description="Its order.")
    user_id: uuid.UUID = Field(description="The order's owner.")
    kind: PaymentKind = Field(description="`order` (the order's own) or `upsell`.")
    amount: int = Field(gt=0, description="Amount paid, in minor units of currency.")
    currency: str = Field(description="ISO currency code, lower case.")
    variant_ids: list[uuid.UUID] = Field(description="The variants it buys, now queued.")


class PaymentRefunded(Event):
    """A payment was refunded (by serenade or in the provider's dashboard)."""

    subject: ClassVar[str] = SUBJECT_PAYMENT_REFUNDED
    type: Literal["payments.refunded"] = "payments.refunded"
    payment_id: uuid.UUID = Field(description="The payment.")
    order_id: uuid.UUID = Field(description="Its order.")
    user_id: uuid.UUID = Field(description="The order's owner.")
    amount: int = Field(gt=0, description="Amount refunded, in minor units of currency.")
    currency: str = Field(description="ISO currency code, lower case.")


class OrderCancelled(Event):
    """An order's own payment was cancelled or expired unpaid: nothing will be generated."""

    subject: ClassVar[str] = SUBJECT_ORDER_CANCELLED
    type: Literal["orders.cancelled"] = "orders.cancelled"
    order_id: uuid.UUID = Field(description="The order.")
    user_id: uuid.UUID = Field(description="Its owner.")
    reason: Literal["cancelled", "expired"] = Field(
        description="`cancelled` by its owner, or `expired` unpaid."
    )


class DeadLettered(Event):
    """A message a service could not process, with the original kept in full."""

    subject: ClassVar[str] = SUBJECT_DEADLETTER_PREFIX
    type: str = Field(default="deadletter", description="`deadletter.<service>`.")
    original_subject: str = Field(description="Subject the failed message arrived on.")
    original_event: Any = Field(
        description="The original event as JSON, or its raw text when it was not JSON."
    )
    error_type: str = Field(description="Class of the error.")
    error: str = Field(description="What went wrong.")
    attempts: int = Field(ge=0, description="Deliveries or attempts made.")
    failed_at: dt.datetime = Field(default_factory=_now, description="When it was given up.")
    service: str = Field(description="The service that gave up.")
