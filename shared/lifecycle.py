"""A variant's lifecycle as conditional updates, each returning the events it causes.

Callers run these inside one service_role transaction and write the returned events to the
outbox in that same transaction (``shared.outbox.enqueue``), so a change and its announcement
commit together. Shared by the generator (normal path) and the dead-letter service (variants
whose requests died without a handler reporting).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.enums import GenerationStatus
from shared.events import Event, OrderCompleted, VariantStatusChanged
from shared.payment_rules import LAPSED_VARIANT, PAID_OR_FREE, refund_if_all_paid_failed
from shared.rows import OrderRow, SongVariantRow

if TYPE_CHECKING:
    from collections.abc import Mapping

    import asyncpg

__all__ = [
    "Completion",
    "StartedAttempt",
    "VariantWithOrder",
    "complete_variant",
    "complete_variants",
    "fail_variant",
    "failed_among",
    "finalize_order_if_done",
    "finalize_orders_if_done",
    "hand_back",
    "is_failed",
    "load_variant",
    "rearm_order",
    "release_for_retry",
    "start_attempt",
    "start_attempts",
]


@dataclass(frozen=True, slots=True)
class VariantWithOrder:
    variant: SongVariantRow
    order: OrderRow


async def load_variant(
    conn: asyncpg.Connection, variant_id: uuid.UUID, *, lock: bool = False
) -> VariantWithOrder | None:
    """The variant and its order, or None when no such variant exists.

    ``lock`` holds the variant's row until the transaction ends, so that a decision taken on
    what was read (is it generating? how many attempts?) cannot race another delivery's.
    """
    # One statement: the variant (locked) and its order (not locked: nothing decided here
    # depends on the order's mutable columns).
    row = await conn.fetchrow(
        "SELECT to_jsonb(v) AS variant, to_jsonb(o) AS order_row"
        " FROM song_variants v JOIN orders o ON o.id = v.order_id WHERE v.id = $1"
        + (" FOR UPDATE OF v" if lock else ""),
        variant_id,
    )
    if row is None:
        return None
    return VariantWithOrder(
        SongVariantRow.model_validate(row["variant"]), OrderRow.model_validate(row["order_row"])
    )


def _status_event(
    row: Mapping[str, Any], user_id: uuid.UUID, correlation_id: str | None
) -> VariantStatusChanged:
    """The status event of a variant row: a record, or the ``to_jsonb`` of one."""
    return VariantStatusChanged(
        variant_id=row["id"],
        order_id=row["order_id"],
        user_id=user_id,
        variant_number=row["variant_number"],
        status=GenerationStatus(row["status"]),
        attempts=row["attempts"],
        error=row["error"],
        correlation_id=correlation_id,
    )


def _variant_status_event(
    variant: SongVariantRow, user_id: uuid.UUID, correlation_id: str | None
) -> VariantStatusChanged:
    """``_status_event`` of a variant read whole (its values typed already)."""
    return VariantStatusChanged(
        variant_id=variant.id,
        order_id=variant.order_id,
        user_id=user_id,
        variant_number=variant.variant_number,
        status=variant.status,
        attempts=variant.attempts,
        error=variant.error,
        correlation_id=correlation_id,
    )


_RETURNING = "RETURNING id, order_id, variant_number, status, attempts, error"


async def start_attempt(
    conn: asyncpg.Connection,
    variant_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    correlation_id: str | None = None,
) -> tuple[int, VariantStatusChanged] | None:
    """``pending`` (or ``generating`` left by a crashed process) becomes ``generating`` with
    one more attempt. Returns the attempt number and its event, or None when the variant is
    already final (a duplicate or stale request, to acknowledge and ignore)."""
    row = await conn.fetchrow(
        "UPDATE song_variants v SET status = 'generating', attempts = attempts + 1,"
        " started_at = now(), completed_at = NULL"
        f" WHERE id = $1 AND status IN ('pending', 'generating') AND {PAID_OR_FREE} " + _RETURNING,
        variant_id,
    )
    if row is None:
        return None
    return row["attempts"], _status_event(row, user_id, correlation_id)


async def complete_variant(
    conn: asyncpg.Connection,
    variant_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    attempt: int,
    storage_path: str,
    title: str,
    lyrics: str,
    duration_seconds: float,
    correlation_id: str | None = None,
) -> list[Event]:
    """``generating`` (this attempt's) becomes ``complete``; resolves the variant's dead-letter
    rows; may complete the order. Empty when another attempt got there first."""
    # One statement: the variant and, only when it completed, its open dead letters.
    row = await conn.fetchrow(
        "WITH done AS (UPDATE song_variants SET status = 'complete', storage_path = $3,"
        " title = $4, lyrics = $5, duration_seconds = $6, error = NULL, completed_at = now()"
        " WHERE id = $1 AND status = 'generating' AND attempts = $2 " + _RETURNING + "),"
        " resolved AS (UPDATE failed_jobs SET resolved_at = now()"
        " WHERE variant_id = (SELECT id FROM done) AND resolved_at IS NULL)"
        " SELECT * FROM done",
        variant_id,
        attempt,
        storage_path,
        title,
        lyrics,
        duration_seconds,
    )
    return await _now_final(conn, row, user_id, correlation_id)


async def release_for_retry(
    conn: asyncpg.Connection,
    variant_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    attempt: int,
    error: str,
    correlation_id: str | None = None,
) -> VariantStatusChanged | None:
    """A failed attempt with attempts left: back to ``pending`` with the error recorded."""
    row = await conn.fetchrow(
        "UPDATE song_variants SET status = 'pending', error = $3"
        " WHERE id = $1 AND status = 'generating' AND attempts = $2 " + _RETURNING,
        variant_id,
        attempt,
        error,
    )
    return None if row is None else _status_event(row, user_id, correlation_id)


async def hand_back(
    conn: asyncpg.Connection,
    variant_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    attempt: int,
    correlation_id: str | None = None,
) -> VariantStatusChanged | None:
    """An attempt interrupted by a stopping generator: back to ``pending``, and the attempt is
    not counted (it did not fail; another process takes the variant at once)."""
    row = await conn.fetchrow(
        "UPDATE song_variants SET status = 'pending', attempts = attempts - 1"
        " WHERE id = $1 AND status = 'generating' AND attempts = $2 " + _RETURNING,
        variant_id,
        attempt,
    )
    return None if row is None else _status_event(row, user_id, correlation_id)


async def fail_variant(
    conn: asyncpg.Connection,
    variant_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    error: str,
    attempt: int | None = None,
    correlation_id: str | None = None,
) -> list[Event]:
    """The last failure: ``failed`` with its error; may complete the order (as failed).

    ``attempt`` guards against a stale attempt; None (the dead-letter service, whose handler
    never reported) fails the variant whatever attempt it is on, unless it is already final.
    """
    row = await conn.fetchrow(
        "UPDATE song_variants SET status = 'failed', error = $2, completed_at = now()"
        " WHERE id = $1 AND status IN ('pending', 'generating')"
        " AND ($3::int IS NULL OR attempts = $3) " + _RETURNING,
        variant_id,
        error,
        attempt,
    )
    return await _now_final(conn, row, user_id, correlation_id)


async def _now_final(
    conn: asyncpg.Connection,
    row: asyncpg.Record | None,
    user_id: uuid.UUID,
    correlation_id: str | None,
) -> list[Event]:
    """A variant that just became final (``row``, None when it did not): its status event, and
    the order's completion when it was the last."""
    if row is None:
        return []
    events: list[Event] = [_status_event(row, user_id, correlation_id)]
    completed = await finalize_order_if_done(conn, row["order_id"], correlation_id=correlation_id)
    if completed is not None:
        events.append(completed)
    return events


async def finalize_order_if_done(
    conn: asyncpg.Connection, order_id: uuid.UUID, *, correlation_id: str | None = None
) -> OrderCompleted | None:
    """``orders.completed`` when every variant is final and it was not yet announced."""
    decided = await finalize_orders_if_done(conn, {order_id: correlation_id})
    return decided.get(order_id)


async def finalize_orders_if_done(
    conn: asyncpg.Connection, orders: Mapping[uuid.UUID, str | None]
) -> dict[uuid.UUID, OrderCompleted]:
    """``orders.completed`` for each of ``orders`` (id -> the correlation id its event
    carries) whose variants are all final and whose completion was not yet announced.

    Decided under a lock on the order rows, taken in id order (two callers never wait on each
    other in a cycle): two last variants finishing at once under READ COMMITTED would otherwise
    each see the other unfinished, and nobody would announce. One statement decides every order
    (a group's orders cost two round trips, not two each)."""
    order_ids = sorted(orders)
    if not order_ids:
        return {}
    await conn.execute(
        "SELECT FROM orders WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE", order_ids
    )
    # A statement of its own, after the lock: its snapshot sees every variant committed by
    # whoever held the lock before (one statement would read them as of before the wait).
    # A variant whose upsell payment lapsed unpaid was never generated: it does not count.
    rows = await conn.fetch(
        "UPDATE orders o SET completion_announced_at = now()"
        " WHERE o.id = ANY($1::uuid[]) AND o.completion_announced_at IS NULL"
        " AND EXISTS (SELECT FROM song_variants WHERE order_id = o.id)"
        " AND NOT EXISTS (SELECT FROM song_variants"
        "  WHERE order_id = o.id AND status NOT IN ('complete', 'failed'))"
        " RETURNING o.id, o.user_id,"
        " EXISTS (SELECT FROM song_variants v WHERE v.order_id = o.id AND v.status = 'failed'"
        f"  AND NOT {LAPSED_VARIANT}) AS failed",
        order_ids,
    )
    decided: dict[uuid.UUID, OrderCompleted] = {}
    for row in sorted(rows, key=lambda row: row["id"]):
        if row["failed"]:
            await refund_if_all_paid_failed(conn, row["id"])
        decided[row["id"]] = OrderCompleted(
            order_id=row["id"],
            user_id=row["user_id"],
            status="failed" if row["failed"] else "complete",
            correlation_id=orders[row["id"]],
        )
    return decided


async def is_failed(conn: asyncpg.Connection, variant_id: uuid.UUID) -> bool:
    """Whether the variant is ``failed`` now."""
    status = await conn.fetchval("SELECT status FROM song_variants WHERE id = $1", variant_id)
    return bool(status == GenerationStatus.FAILED.value)


async def rearm_order(conn: asyncpg.Connection, order_id: uuid.UUID) -> None:
    """An upsell, retry or replay made the order unfinished: its next completion is announced."""
    await conn.execute("UPDATE orders SET completion_announced_at = NULL WHERE id = $1", order_id)


# Batches: the same conditional updates for several variants in one statement each, for a
# caller that shares one transaction among the variants that arrive together. A variant the
# batch's condition does not take is left alone (the caller decides it one by one, with the
# functions above), so every rule above holds for it unchanged.


@dataclass(frozen=True, slots=True)
class StartedAttempt:
    found: VariantWithOrder
    attempt: int
    event: VariantStatusChanged


async def start_attempts(
    conn: asyncpg.Connection,
    variant_ids: list[uuid.UUID],
    *,
    redelivered: list[uuid.UUID],
    max_attempts: int,
    correlation_ids: dict[uuid.UUID, str | None],
) -> dict[uuid.UUID, StartedAttempt]:
    """``start_attempt`` for every variant that is plainly claimable: ``pending``, or
    ``generating`` with attempts left when its request was delivered again (its holder was
    lost). Anything else (unknown, final, in progress elsewhere, out of attempts) is not
    touched and not returned. One statement, its condition checked again on the row's latest
    version after a wait for its lock, as ``start_attempt``'s is."""
    rows = await conn.fetch(
        "UPDATE song_variants v SET status = 'generating', attempts = v.attempts + 1,"
        " started_at = now(), completed_at = NULL FROM orders o"
        " WHERE v.id = ANY($1::uuid[]) AND o.id = v.order_id AND (v.status = 'pending'"
        "  OR (v.status = 'generating' AND v.id = ANY($2::uuid[]) AND v.attempts < $3))"
        f" AND {PAID_OR_FREE}"
        " RETURNING to_jsonb(v) AS variant, to_jsonb(o) AS order_row",
        variant_ids,
        redelivered,
        max_attempts,
    )
    started: dict[uuid.UUID, StartedAttempt] = {}
    # An order's variants usually arrive together: its row is read once per statement (rows
    # are frozen), and each status event made of the variant as read (typed already).
    orders: dict[str, OrderRow] = {}
    for row in rows:
        variant = SongVariantRow.model_validate(row["variant"])
        order_row = row["order_row"]
        order = orders.get(order_row["id"])
        if order is None:
            order = orders[order_row["id"]] = OrderRow.model_validate(order_row)
        event = _variant_status_event(variant, order.user_id, correlation_ids.get(variant.id))
        started[variant.id] = StartedAttempt(
            VariantWithOrder(variant, order), variant.attempts, event
        )
    return started


@dataclass(frozen=True, slots=True)
class Completion:
    """One finished attempt, as ``complete_variant`` takes it."""

    variant_id: uuid.UUID
    user_id: uuid.UUID
    attempt: int
    storage_path: str
    title: str
    lyrics: str
    duration_seconds: float
    correlation_id: str | None


async def complete_variants(
    conn: asyncpg.Connection, completions: list[Completion]
) -> tuple[dict[uuid.UUID, list[Event]], list[Event]]:
    """``complete_variant`` for several variants (distinct): each variant's events (empty when
    another attempt got there first), and every event in the order to enqueue them (statuses,
    then order completions). The orders' completions are decided by
    ``finalize_orders_if_done``, all in one statement after the locks."""
    by_id = {item.variant_id: item for item in completions}
    rows = await conn.fetch(
        "WITH input AS (SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[],"
        "  $5::text[], $6::float8[]) AS i(id, attempt, storage_path, title, lyrics, seconds)),"
        " done AS (UPDATE song_variants v SET status = 'complete', storage_path = i.storage_path,"
        "  title = i.title, lyrics = i.lyrics, duration_seconds = i.seconds, error = NULL,"
        "  completed_at = now() FROM input i"
        "  WHERE v.id = i.id AND v.status = 'generating' AND v.attempts = i.attempt"
        "  RETURNING v.id, v.order_id, v.variant_number, v.status, v.attempts, v.error),"
        " resolved AS (UPDATE failed_jobs SET resolved_at = now()"
        "  WHERE variant_id IN (SELECT id FROM done) AND resolved_at IS NULL)"
        " SELECT * FROM done",
        [item.variant_id for item in completions],
        [item.attempt for item in completions],
        [item.storage_path for item in completions],
        [item.title for item in completions],
        [item.lyrics for item in completions],
        [item.duration_seconds for item in completions],
    )
    events: dict[uuid.UUID, list[Event]] = {item.variant_id: [] for item in completions}
    statuses: list[Event] = []
    # The correlation id an order's completion carries: that of its variant completed last here.
    orders: dict[uuid.UUID, uuid.UUID] = {}
    for row in rows:
        item = by_id[row["id"]]
        status = _status_event(row, item.user_id, item.correlation_id)
        events[item.variant_id].append(status)
        statuses.append(status)
        orders[row["order_id"]] = item.variant_id
    # Every order's completion decided after the locks on all of them, by the one rule.
    decided = await finalize_orders_if_done(
        conn,
        {order_id: by_id[variant_id].correlation_id for order_id, variant_id in orders.items()},
    )
    completed: list[Event] = []
    for order_id in sorted(decided):
        event = decided[order_id]
        events[orders[order_id]].append(event)
        completed.append(event)
    return events, statuses + completed


async def failed_among(conn: asyncpg.Connection, variant_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these variants are ``failed`` now."""
    rows = await conn.fetch(
        "SELECT id FROM song_variants WHERE id = ANY($1::uuid[]) AND status = 'failed'",
        variant_ids,
    )
    return {row["id"] for row in rows}
