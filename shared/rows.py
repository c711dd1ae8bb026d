"""pydantic models that mirror the tables exactly, column for column.

``tests/integration/test_models_match_catalog.py`` holds them against the live catalog: names,
types, nullability and enum labels. Change a migration and these together.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from shared.enums import GenerationStatus, Genre, Mood, Occasion, PaymentKind, PaymentStatus

__all__ = [
    "ROW_MODELS",
    "ConsoleSessionRow",
    "ConsoleSignInFailureRow",
    "FailedJobRow",
    "OccasionReminderRow",
    "OrderRow",
    "OutboxRow",
    "PaymentRow",
    "PaymentWebhookEventRow",
    "SongVariantRow",
    "StrayChargeRow",
    "TableRow",
]


class TableRow(BaseModel):
    """A row read from ``table``; build one with ``model_validate(dict(record))``."""

    model_config = ConfigDict(frozen=True, extra="forbid", from_attributes=True)

    table: ClassVar[str]


class OrderRow(TableRow):
    table: ClassVar[str] = "orders"

    id: uuid.UUID
    user_id: uuid.UUID
    recipient_name: str
    occasion: Occasion
    occasion_date: dt.date | None
    genre: Genre
    mood: Mood
    story: str | None
    idempotency_key: str | None
    request_digest: str | None
    completion_announced_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class SongVariantRow(TableRow):
    table: ClassVar[str] = "song_variants"

    id: uuid.UUID
    order_id: uuid.UUID
    variant_number: int
    status: GenerationStatus
    share_token: uuid.UUID
    storage_path: str | None
    attempts: int
    error: str | None
    title: str | None
    lyrics: str | None
    duration_seconds: float | None
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    # The payment that buys it (migration 0060); None with payments off.
    payment_id: uuid.UUID | None = None
    # The upsell request's Idempotency-Key that made it (migration 0080).
    idempotency_key: str | None = None


class FailedJobRow(TableRow):
    table: ClassVar[str] = "failed_jobs"

    id: uuid.UUID
    subject: str
    service: str
    event_data: Any | None
    event_text: str | None
    error_type: str
    error: str
    attempts: int
    message_id: str
    correlation_id: str | None
    variant_id: uuid.UUID | None
    created_at: dt.datetime
    replayed_at: dt.datetime | None
    resolved_at: dt.datetime | None
    # The payment a payments dead letter is about (migration 0060).
    payment_id: uuid.UUID | None = None


class OutboxRow(TableRow):
    table: ClassVar[str] = "outbox"

    id: int
    event_id: uuid.UUID
    subject: str
    payload: Any
    headers: dict[str, str]
    created_at: dt.datetime
    published_at: dt.datetime | None


class OccasionReminderRow(TableRow):
    table: ClassVar[str] = "occasion_reminders"

    order_id: uuid.UUID
    occasion_year: int
    next_date: dt.date
    event_id: uuid.UUID
    sent_at: dt.datetime


class PaymentRow(TableRow):
    table: ClassVar[str] = "payments"

    id: uuid.UUID
    order_id: uuid.UUID
    kind: PaymentKind
    status: PaymentStatus
    amount: int
    currency: str
    provider: str
    provider_session_id: str | None
    provider_payment_intent: str | None
    checkout_url: str | None
    session_attempts: int
    lapse_reason: str | None
    refund_attempts: int
    refund_requested_at: dt.datetime | None
    next_refund_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    expires_at: dt.datetime
    paid_at: dt.datetime | None
    refunded_at: dt.datetime | None


class PaymentWebhookEventRow(TableRow):
    table: ClassVar[str] = "payment_webhook_events"

    event_id: str
    event_type: str
    payment_id: uuid.UUID | None
    received_at: dt.datetime


class StrayChargeRow(TableRow):
    table: ClassVar[str] = "stray_charges"

    id: uuid.UUID
    payment_id: uuid.UUID
    payment_intent: str
    amount: int
    currency: str
    status: PaymentStatus
    refund_attempts: int
    next_refund_at: dt.datetime | None
    refund_requested_at: dt.datetime | None
    refunded_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class ConsoleSessionRow(TableRow):
    table: ClassVar[str] = "console_sessions"

    id: uuid.UUID
    secret_hash: str
    csrf_token: str
    token_id: str | None
    client: str | None
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None


class ConsoleSignInFailureRow(TableRow):
    table: ClassVar[str] = "console_sign_in_failures"

    id: int
    client: str
    reason: str
    failed_at: dt.datetime


ROW_MODELS: tuple[type[TableRow], ...] = (
    OrderRow,
    SongVariantRow,
    FailedJobRow,
    OutboxRow,
    OccasionReminderRow,
    PaymentRow,
    PaymentWebhookEventRow,
    StrayChargeRow,
    ConsoleSessionRow,
    ConsoleSignInFailureRow,
)
