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
from shared.enums import GenerationStatus

__all__ = [
    "ORDER_STATUSES",
    "SEARCH_LIMIT",
    "FoundOrder",
    "OrderPage",
    "order_page",
    "retry_variant",
    "search",
]

SEARCH_LIMIT: Final = 50
ORDER_STATUSES: Final = ("pending", "generating", "complete", "failed")
_SERVICE = Caller.service()

# The order's status derived in SQL exactly as ``services.api.views.derive_status`` does.
_STATUS = """
CASE
    WHEN count(v.id) = count(v.id) FILTER (WHERE v.status = 'pending') THEN 'pending'
    WHEN count(v.id) = count(v.id) FILTER (WHERE v.status = 'complete') THEN 'complete'
    WHEN count(v.id) = count(v.id) FILTER (WHERE v.status IN ('complete', 'failed'))
        THEN 'failed'
    ELSE 'generating'
END
"""

_SEARCH = f"""
SELECT o.id, o.user_id, o.recipient_name, o.occasion::text AS occasion, o.created_at,
       count(v.id) AS variants,
       count(v.id) FILTER (WHERE v.status = 'complete') AS complete,
       count(v.id) FILTER (WHERE v.status = 'failed') AS failed,
       {_STATUS} AS status
FROM orders o LEFT JOIN song_variants v ON v.order_id = o.id
WHERE ($1::uuid IS NULL OR o.id = $1) AND ($2::uuid IS NULL OR o.user_id = $2)
GROUP BY o.id
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


async def search(
    db: Database,
    *,
    order_id: uuid.UUID | None,
    user_id: uuid.UUID | None,
    status: str | None,
) -> list[FoundOrder]:
    """Orders matching every given filter, newest first (at most ``SEARCH_LIMIT``)."""
    async with db.run_as(_SERVICE) as conn:
        rows = await conn.fetch(_SEARCH, order_id, user_id, status, SEARCH_LIMIT)
    return [FoundOrder(**dict(row)) for row in rows]


@dataclass(frozen=True, slots=True)
class VariantView:
    variant: VariantOut
    share_url: str
    audio_url: str | None


@dataclass(frozen=True, slots=True)
class OrderPage:
    order: OrderOut
    variants: list[VariantView]


def _absolute(public_url: str | None, path: str) -> str:
    return f"{public_url.rstrip('/')}{path}" if public_url else path


async def order_page(
    db: Database, signer: UrlSigner, order_id: uuid.UUID, *, public_url: str | None
) -> OrderPage:
    """The order (404 when there is none), each variant's share link and signed audio."""
    order = await orders.get_order(db, _SERVICE, order_id)
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
