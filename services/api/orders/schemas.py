"""The orders feature's HTTP bodies: what it accepts and returns, as pydantic models.

Inputs refuse unknown fields and wrong types (a number is not a string, "3" is not a count);
outputs mirror the contract's Order and Variant field for field.
"""

import datetime as dt
import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from shared.enums import GenerationStatus, Genre, Mood, Occasion, PaymentKind, PaymentStatus

__all__ = [
    "AudioLink",
    "CreateOrder",
    "OrderOut",
    "OrderPage",
    "OrderStatus",
    "PaymentOut",
    "VariantOut",
]

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _calendar_date(value: Any) -> Any:
    """Only ``YYYY-MM-DD`` strings naming a real day (no timestamps, no 2025-02-30)."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("expected a date as YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError as error:
        raise ValueError(f"{value} is not a calendar date") from error


# Litestar validates bodies with strict=False, which overrides pydantic's per-field strictness;
# these validators keep JSON types exact whatever the mode ("3" is not a count, 42 not a name).
def _a_string(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("expected a string")  # noqa: TRY004 - pydantic reports ValueError
    if "\x00" in value:  # PostgreSQL text cannot hold NUL
        raise ValueError("must not contain NUL characters")
    return value


def _an_integer(value: Any) -> Any:
    if type(value) is not int:
        raise ValueError("expected an integer")
    return value


def _not_blank(value: Any) -> Any:
    if not _a_string(value).strip():
        raise ValueError("must not be blank")
    return value


CalendarDate = Annotated[dt.date, BeforeValidator(_calendar_date)]
RecipientName = Annotated[
    str,
    BeforeValidator(_not_blank),
    Field(min_length=1, max_length=100, pattern=r"^[^\x00]*\S[^\x00]*$"),
]
Story = Annotated[str, BeforeValidator(_a_string), Field(max_length=2000, pattern=r"^[^\x00]*$")]
VariantCount = Annotated[int, BeforeValidator(_an_integer), Field(ge=1, le=5)]


class CreateOrder(BaseModel):
    """A new order: who the song is for, for what, in which style."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recipient_name: RecipientName = Field(description="Who the song is for (1-100 characters).")
    occasion: Occasion = Field(description="What it celebrates.")
    occasion_date: CalendarDate | None = Field(default=None, description="YYYY-MM-DD.")
    genre: Genre = Field(description="Musical genre.")
    mood: Mood = Field(default=Mood.HEARTFELT, description="Mood of the song.")
    story: Story | None = Field(
        default=None, description="Anything the song should tell (0-2000 characters)."
    )
    variant_count: VariantCount = Field(
        default=3, description="How many variants to generate (1-5)."
    )


class PaymentOut(BaseModel):
    """A payment (with SERENADE_PAYMENTS on): the order's own, or one upsell's."""

    id: uuid.UUID
    kind: PaymentKind = Field(description="`order` (the order's own) or `upsell`.")
    status: PaymentStatus
    amount: int = Field(gt=0, description="Minor units (cents) of currency.")
    currency: str = Field(description="ISO currency code, lower case.")
    checkout_url: str | None = Field(
        description="Where the customer pays; null while the provider could not be reached."
    )
    created_at: dt.datetime
    paid_at: dt.datetime | None


class VariantOut(BaseModel):
    """One variant of an order's song."""

    id: uuid.UUID
    order_id: uuid.UUID
    variant_number: int = Field(ge=1, le=5)
    status: GenerationStatus
    share_token: uuid.UUID
    attempts: int = Field(ge=0)
    error: str | None
    title: str | None
    lyrics: str | None
    duration_seconds: float | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    payment: PaymentOut | None = Field(
        default=None, description="The payment that buys it; null with payments off."
    )


OrderStatus = Literal[
    "pending", "generating", "complete", "failed", "awaiting_payment", "cancelled"
]


class OrderOut(BaseModel):
    """An order with its variants, sorted by variant number."""

    id: uuid.UUID
    user_id: uuid.UUID
    recipient_name: str
    occasion: Occasion
    occasion_date: dt.date | None
    genre: Genre
    mood: Mood
    story: str | None
    status: OrderStatus = Field(description="Derived from the variants.")
    created_at: dt.datetime
    updated_at: dt.datetime
    variants: list[VariantOut]
    payment: PaymentOut | None = Field(
        default=None, description="Its own payment (kind order); null with payments off."
    )
    payments: list[PaymentOut] = Field(
        default_factory=list, description="All its payments, oldest first."
    )


class OrderPage(BaseModel):
    """The caller's orders, newest first."""

    items: list[OrderOut]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null at the end."
    )


class AudioLink(BaseModel):
    """A signed, short-lived URL to a variant's audio."""

    url: str
    expires_at: dt.datetime
