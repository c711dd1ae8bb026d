"""Rows to response bodies: the column lists the API reads and the derived order status."""

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import asyncpg

from services.api.orders.schemas import OrderOut, OrderStatus, PaymentOut, VariantOut
from shared.enums import GenerationStatus

__all__ = [
    "ORDER_COLUMNS",
    "ORDER_WITH_VARIANTS",
    "PAYMENT_COLUMNS",
    "VARIANT_COLUMNS",
    "derive_status",
    "fetch_payments",
    "fetch_variants",
    "order_out",
    "order_read_out",
    "payment_out",
    "split_order_rows",
    "variant_out",
]

ORDER_COLUMNS = (
    "id, user_id, recipient_name, occasion, occasion_date, genre, mood, story,"
    " created_at, updated_at"
)
VARIANT_COLUMNS = (
    "id, order_id, variant_number, status, share_token, attempts, error, title, lyrics,"
    " duration_seconds, created_at, started_at, completed_at, payment_id"
)
# A payment as the API shows it, and whether it lapsed unpaid (which the order's status uses).
PAYMENT_COLUMNS = (
    "id, order_id, kind, status, amount, currency, checkout_url, created_at, paid_at, lapse_reason"
)


def _names(columns: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in columns.split(","))


_ORDER_NAMES = _names(ORDER_COLUMNS)
_VARIANT_NAMES = _names(VARIANT_COLUMNS)
# An order and its variants in one statement (one round trip instead of two): the order's
# columns, then each variant's prefixed ``v_``, one row per variant (one row of NULL variant
# columns when it has none). Row-level security applies to both tables as to separate reads.
ORDER_WITH_VARIANTS = (
    "SELECT "
    + ", ".join(f"o.{name}" for name in _ORDER_NAMES)
    + ", "
    + ", ".join(f"v.{name} AS v_{name}" for name in _VARIANT_NAMES)
    + " FROM orders o LEFT JOIN song_variants v ON v.order_id = o.id"
)


def split_order_rows(
    rows: Sequence[asyncpg.Record],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The order and its variants from the rows of ``ORDER_WITH_VARIANTS`` (at least one)."""
    first = rows[0]
    order = {name: first[name] for name in _ORDER_NAMES}
    variants = [
        {name: row[f"v_{name}"] for name in _VARIANT_NAMES}
        for row in rows
        if row["v_id"] is not None
    ]
    return order, variants


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


def variant_out(
    row: asyncpg.Record | Mapping[str, Any], payment: PaymentOut | None = None
) -> VariantOut:
    return VariantOut.model_validate({**dict(row), "payment": payment})


def payment_out(row: asyncpg.Record | Mapping[str, Any]) -> PaymentOut:
    return PaymentOut.model_validate(dict(row))


def order_out(
    order: asyncpg.Record | Mapping[str, Any],
    variants: Sequence[asyncpg.Record | Mapping[str, Any]],
    payments: Sequence[asyncpg.Record | Mapping[str, Any]] | None = None,
) -> OrderOut:
    """The Order; ``payments`` None with payments off (then ``payment`` is null)."""
    if payments is None:
        shaped = sorted((variant_out(row) for row in variants), key=lambda v: v.variant_number)
        return OrderOut.model_validate(
            {**dict(order), "status": derive_status(v.status for v in shaped), "variants": shaped}
        )
    by_id = {row["id"]: payment_out(row) for row in payments}
    lapsed = {row["id"] for row in payments if row["lapse_reason"] is not None}
    shaped = sorted(
        (variant_out(row, by_id.get(row["payment_id"])) for row in variants),
        key=lambda v: v.variant_number,
    )
    own = next((row for row in payments if row["kind"] == "order"), None)
    status: OrderStatus
    if own is not None and own["lapse_reason"] is not None:
        status = "cancelled"
    elif own is not None and own["status"] == "awaiting":
        status = "awaiting_payment"
    else:
        # A variant whose upsell payment lapsed unpaid was never generated: it does not count.
        counted = [v for v in shaped if v.payment is None or v.payment.id not in lapsed]
        status = derive_status(v.status for v in counted)
    return OrderOut.model_validate(
        {
            **dict(order),
            "status": status,
            "variants": shaped,
            "payment": None if own is None else by_id[own["id"]],
            "payments": [by_id[row["id"]] for row in payments],
        }
    )


def order_read_out(row: asyncpg.Record) -> OrderOut:
    """The Order from a row of ``api.get_order`` or ``api.list_orders`` (migration 0100): the
    order's columns, its variants, and its payments (NULL when they were not asked for)."""
    order = {name: row[name] for name in _ORDER_NAMES}
    return order_out(order, row["variants"], row["payments"])


async def fetch_payments(
    conn: asyncpg.Connection, order_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[asyncpg.Record]]:
    """The payments of ``order_ids`` (as far as the caller may see them), oldest first."""
    return await _rows_by_order(
        conn,
        f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = ANY($1::uuid[])"
        " ORDER BY order_id, created_at, id",
        order_ids,
    )


async def fetch_variants(
    conn: asyncpg.Connection, order_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[asyncpg.Record]]:
    """The variants of ``order_ids`` (as far as the caller may see them), by order."""
    return await _rows_by_order(
        conn,
        f"SELECT {VARIANT_COLUMNS} FROM song_variants WHERE order_id = ANY($1::uuid[])"
        " ORDER BY order_id, variant_number",
        order_ids,
    )


async def _rows_by_order(
    conn: asyncpg.Connection, sql: str, order_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[asyncpg.Record]]:
    """The rows ``sql`` returns for ``$1 = order_ids``, in its order, under each order's id
    (every id present, an empty list where none)."""
    by_order: dict[uuid.UUID, list[asyncpg.Record]] = {order_id: [] for order_id in order_ids}
    if not order_ids:
        return by_order
    for row in await conn.fetch(sql, list(order_ids)):
        by_order[row["order_id"]].append(row)
    return by_order
