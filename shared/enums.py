"""The closed sets of the contract, mirrored by PostgreSQL enum types of the same names."""

from __future__ import annotations

import enum

__all__ = [
    "GenerationStatus",
    "Genre",
    "Mood",
    "Occasion",
    "PaymentKind",
    "PaymentStatus",
    "RequestReason",
]


class GenerationStatus(enum.StrEnum):
    PENDING = "pending"
    GENERATING = "generating"
    COMPLETE = "complete"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (GenerationStatus.COMPLETE, GenerationStatus.FAILED)


class Occasion(enum.StrEnum):
    BIRTHDAY = "birthday"
    ANNIVERSARY = "anniversary"
    WEDDING = "wedding"
    VALENTINES = "valentines"
    GRADUATION = "graduation"
    MOTHERS_DAY = "mothers_day"
    FATHERS_DAY = "fathers_day"
    HOLIDAY = "holiday"
    OTHER = "other"


class Genre(enum.StrEnum):
    POP = "pop"
    ROCK = "rock"
    COUNTRY = "country"
    ACOUSTIC = "acoustic"
    RNB = "rnb"
    HIPHOP = "hiphop"
    JAZZ = "jazz"
    LULLABY = "lullaby"


class Mood(enum.StrEnum):
    JOYFUL = "joyful"
    ROMANTIC = "romantic"
    NOSTALGIC = "nostalgic"
    FUNNY = "funny"
    HEARTFELT = "heartfelt"
    EPIC = "epic"


class RequestReason(enum.StrEnum):
    """Why a variant was queued for generation."""

    CREATED = "created"
    UPSELL = "upsell"
    RETRY = "retry"
    REPLAY = "replay"


class PaymentKind(enum.StrEnum):
    """What a payment buys: the order's own variants, or one +1 upsell variant."""

    ORDER = "order"
    UPSELL = "upsell"


class PaymentStatus(enum.StrEnum):
    AWAITING = "awaiting"
    PAID = "paid"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REFUND_PENDING = "refund_pending"
    REFUNDED = "refunded"
