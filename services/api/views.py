"""Rows to response bodies: the column lists the API reads and the derived order status."""

import uuid
from collections.abc import Iterable, Sequence

import asyncpg

from services.api.schemas import OrderOut, OrderStatus, VariantOut
from shared.enums import GenerationStatus

__all__ = [
    "ORDER_COLUMNS",
    "VARIANT_COLUMNS",
    "derive_status",
    "fetch_variants",
    "order_out",
    "variant_out",
]

ORDER_COLUMNS = (
    "id, user_id, recipient_name, occasion, occasion_date, genre, mood, story,"
    " created_at, updated_at"
)
VARIANT_COLUMNS = (
    "id, order_id, variant_number, status, share_token, attempts, error, title, lyrics,"
    " duration_seconds, created_at, started_at, completed_at"
)


def derive_status(statuses: Iterable[GenerationStatus]) -> OrderStatus:
    """pending (all pending), complete (all complete), failed (all final, one failed), else
    generating."""
    seen = set(statuses)
    if not seen or seen == {GenerationStatus.PENDING}:
        return "pending"
    if seen == {GenerationStatus.COMPLETE}:
        return "complete"
    if all(status.is_final for status in seen):
        return "failed"
    return "generating"


def variant_out(row: asyncpg.Record) -> VariantOut:
    return VariantOut.model_validate(dict(row))


def order_out(order: asyncpg.Record, variants: Sequence[asyncpg.Record]) -> OrderOut:
    shaped = sorted((variant_out(row) for row in variants), key=lambda v: v.variant_number)
    return OrderOut.model_validate(
        {**dict(order), "status": derive_status(v.status for v in shaped), "variants": shaped}
    )


async def fetch_variants(
    conn: asyncpg.Connection, order_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[asyncpg.Record]]:
    """The variants of ``order_ids`` (as far as the caller may see them), by order."""
    by_order: dict[uuid.UUID, list[asyncpg.Record]] = {order_id: [] for order_id in order_ids}
    if not order_ids:
        return by_order
    rows = await conn.fetch(
        f"SELECT {VARIANT_COLUMNS} FROM song_variants WHERE order_id = ANY($1::uuid[])"
        " ORDER BY order_id, variant_number",
        list(order_ids),
    )
    for row in rows:
        by_order[row["order_id"]].append(row)
    return by_order
