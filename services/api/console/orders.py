"""The console's orders: find them, and one order's page with its variants' audio.

The order itself is read by ``services.api.orders.get_order`` (the API's own code) and a retry
is ``services.api.variants.retry``: the console adds the search and what only an operator sees
(storage, signed audio, share links).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Final

from services.api.common.database import Database
from services.api.common.signing import UrlSigner
from services.api.orders import queries as orders
from services.api.orders import variants
from services.api.orders.schemas import OrderOut, VariantOut
from shared.db import Caller
from shared.enums import GenerationStatus, PaymentStatus

__all__ = [
    "ORDER_STATUSES",
    "PAYMENT_STATUSES",
    "SEARCH_LIMIT",
    "FoundOrder",
    "OrderPage",
    "Search",
    "order_page",
    "retry_variant",
    "search",
]

SEARCH_LIMIT: Final = 50
ORDER_STATUSES: Final = (
    "awaiting_payment",
    "pending",
    "generating",
    "complete",
    "failed",
    "cancelled",
)
# The order's own payment's status; "none": no payment (payments off, or an order made before).
PAYMENT_STATUSES: Final = (*(status.value for status in PaymentStatus), "none")
_SERVICE = Caller.service()

# The variants that count in the order's status: not those an upsell's lapsed payment failed.
_COUNTED = "v.id IS NOT NULL AND vp.lapse_reason IS NULL"
# The order's status derived in SQL as ``services.api.orders.views.order_out`` derives it (a
# search filters on it, so it cannot be computed after the query): cancelled / awaiting_payment
# by the order's own payment, otherwise by its counted variants, as ``derive_status``.
_STATUS = f"""
CASE
    WHEN op.lapse_reason IS NOT NULL THEN 'cancelled'
    WHEN op.status = 'awaiting' THEN 'awaiting_payment'
    WHEN count(*) FILTER (WHERE {_COUNTED})
        = count(*) FILTER (WHERE {_COUNTED} AND v.status = 'pending') THEN 'pending'
    WHEN count(*) FILTER (WHERE {_COUNTED})
        = count(*) FILTER (WHERE {_COUNTED} AND v.status = 'complete') THEN 'complete'
    WHEN count(*) FILTER (WHERE {_COUNTED})
        = count(*) FILTER (WHERE {_COUNTED} AND v.status IN ('complete', 'failed'))
        THEN 'failed'
    ELSE 'generating'
END
"""

_SEARCH = f"""
SELECT o.id, o.user_id, o.recipient_name, o.occasion::text AS occasion, o.created_at,
       op.status::text AS payment_status,
       count(v.id) AS variants,
       count(v.id) FILTER (WHERE v.status = 'complete') AS complete,
       count(v.id) FILTER (WHERE v.status = 'failed') AS failed,
       {_STATUS} AS status
FROM orders o
LEFT JOIN payments op ON op.order_id = o.id AND op.kind = 'order'
LEFT JOIN song_variants v ON v.order_id = o.id
LEFT JOIN payments vp ON vp.id = v.payment_id
WHERE ($1::uuid IS NULL OR o.id = $1) AND ($2::uuid IS NULL OR o.user_id = $2)
  AND ($5::text IS NULL OR ($5 = 'none' AND op.id IS NULL) OR op.status::text = $5)
GROUP BY o.id, op.id
HAVING $3::text IS NULL OR {_STATUS} = $3
ORDER BY o.created_at DESC, o.id DESC
LIMIT $4
"""


@dataclass(frozen=True, slots=True)
class FoundOrder:
    id: uuid.UUID
    user_id: uuid.UUID
    recipient_name: str
    occasion: str
    created_at: dt.datetime
    variants: int
    complete: int
    failed: int
    status: str
    payment_status: str | None


def _uuid(text: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Search:
    """The search form's fields as typed (blank: any)."""

    order_id: str | None = None
    user_id: str | None = None
    status: str | None = None
    payment_status: str | None = None

    @classmethod
    def parse(cls, **fields: str | None) -> Search:
        return cls(**{name: (value or "").strip() or None for name, value in fields.items()})

    def problems(self) -> list[str]:
        """What is wrong with the fields, in words (nothing: the search can run)."""
        found = [
            f"{label} is not a UUID"
            for label, value in (("order id", self.order_id), ("user id", self.user_id))
            if value is not None and _uuid(value) is None
        ]
        if self.status is not None and self.status not in ORDER_STATUSES:
            found.append(f"status must be one of {', '.join(ORDER_STATUSES)}")
        if self.payment_status is not None and self.payment_status not in PAYMENT_STATUSES:
            found.append(f"payment status must be one of {', '.join(PAYMENT_STATUSES)}")
        return found

    @property
    def searched(self) -> bool:
        return any((self.order_id, self.user_id, self.status, self.payment_status))


async def search(db: Database, wanted: Search) -> list[FoundOrder]:
    """Orders matching every given filter, newest first (at most ``SEARCH_LIMIT``)."""
    async with db.run_as(_SERVICE) as conn:
        rows = await conn.fetch(
            _SEARCH,
            _uuid(wanted.order_id),
            _uuid(wanted.user_id),
            wanted.status,
            SEARCH_LIMIT,
            wanted.payment_status,
        )
    return [FoundOrder(**dict(row)) for row in rows]


@dataclass(frozen=True, slots=True)
class VariantView:
    variant: VariantOut
    share_url: str
    audio_url: str | None


@dataclass(frozen=True, slots=True)
class OrderPage:
    order: OrderOut  # with its payments (the API's own read of the order)
    variants: list[VariantView]


def _absolute(public_url: str | None, path: str) -> str:
    return f"{public_url.rstrip('/')}{path}" if public_url else path


async def order_page(
    db: Database, signer: UrlSigner, order_id: uuid.UUID, *, public_url: str | None
) -> OrderPage:
    """The order (404 when there is none), each variant's share link and signed audio."""
    order = await orders.get_order(db, _SERVICE, order_id, with_payments=True)
    async with db.run_as(_SERVICE) as conn:
        stored = {
            row["id"]: row["storage_path"]
            for row in await conn.fetch(
                "SELECT id, storage_path FROM song_variants"
                " WHERE order_id = $1 AND status = 'complete'",
                order_id,
            )
        }
    views = []
    for variant in order.variants:
        path = stored.get(variant.id)
        audio = None
        if variant.status == GenerationStatus.COMPLETE and path:
            audio = signer.sign_path(variants.media_path(path)).url
        share = _absolute(public_url, f"/s/{variant.share_token}")
        views.append(VariantView(variant, share, audio))
    return OrderPage(order, views)


async def retry_variant(db: Database, variant_id: uuid.UUID, *, correlation_id: str) -> VariantOut:
    """The API's retry (409 unless the variant is failed), as service_role."""
    return await variants.retry(db, _SERVICE, variant_id, correlation_id=correlation_id)
