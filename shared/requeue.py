"""Queueing a failed variant again: the API's retry, and the replay of a dead-letter row.

``requeue_failed_variant`` is the shared step (``POST /v1/variants/{id}/retry``);
``replay_failed_job(conn, job_id)`` wraps it for ``serenade failed-jobs replay`` and
``POST /v1/admin/failed-jobs/{id}/replay``. Run them inside one service_role transaction; they
raise a ``ReplayError`` subclass (and change nothing) when the variant cannot be queued:

- ``FailedJobNotFoundError``: no such row (404);
- ``NotReplayableError``: the row is not about a variant request, or its variant is gone (409);
- ``ReplayConflictError``: the variant is not ``failed``, e.g. a replay or retry is in flight (409).

The guard is the conditional update ``... WHERE status = 'failed'``: of two replays racing for
one variant, exactly one finds it failed, so a replay in flight is never doubled.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.enums import GenerationStatus, RequestReason
from shared.events import SUBJECT_VARIANT_REQUESTED, VariantRequested, VariantStatusChanged
from shared.lifecycle import rearm_order
from shared.outbox import enqueue
from shared.payment_rules import REFUND_SUBJECT, unpaid_reason

if TYPE_CHECKING:
    import asyncpg

__all__ = [
    "FailedJobNotFoundError",
    "NotReplayableError",
    "ReplayConflictError",
    "ReplayError",
    "Replayed",
    "Requeued",
    "replay_failed_job",
    "replayable_job_ids",
    "requeue_failed_variant",
]


class ReplayError(Exception):
    """The row cannot be replayed; the message says why, for an operator."""


class FailedJobNotFoundError(ReplayError):
    """No such row."""


class NotReplayableError(ReplayError):
    """The row is not about a variant request, or its variant is gone."""


class ReplayConflictError(ReplayError):
    """The variant is not ``failed``: a replay or retry is in flight, or it completed."""


@dataclass(frozen=True, slots=True)
class Requeued:
    variant: asyncpg.Record
    request: VariantRequested


@dataclass(frozen=True, slots=True)
class Replayed:
    job_id: uuid.UUID
    variant_id: uuid.UUID | None
    order_id: uuid.UUID
    request_event_id: uuid.UUID | None
    # A refund's dead letter: the payment whose refund is tried again (no variant, no request).
    payment_id: uuid.UUID | None = None

    def describe(self) -> str:
        """One line for an operator."""
        if self.payment_id is not None:
            return f"replayed {self.job_id}: the refund of payment {self.payment_id} is due again"
        return (
            f"replayed {self.job_id}: variant {self.variant_id} is pending again,"
            f" request {self.request_event_id} queued"
        )


_RESET_VARIANT = """
UPDATE song_variants
SET status = 'pending', attempts = 0, error = NULL, started_at = NULL, completed_at = NULL
WHERE id = $1 AND status = 'failed'
RETURNING *
"""


async def requeue_failed_variant(
    conn: asyncpg.Connection,
    variant_id: uuid.UUID,
    *,
    reason: RequestReason,
    correlation_id: str | None = None,
) -> Requeued:
    """``failed`` becomes ``pending`` (attempts 0, no error), the order is re-armed, and a
    pending status event plus a new ``variants.requested`` are written.

    The guard is the conditional update: of two requeues racing for one variant, exactly one
    finds it failed, so work in flight is never doubled.
    """
    # Nothing is generated that was not paid for, or was paid back (payments on only).
    unpaid = await unpaid_reason(conn, variant_id)
    if unpaid is not None:
        raise ReplayConflictError(unpaid)
    reset = await conn.fetchrow(_RESET_VARIANT, variant_id)
    if reset is None:
        status = await conn.fetchval(
            "SELECT status::text FROM song_variants WHERE id = $1", variant_id
        )
        if status is None:
            raise NotReplayableError(f"variant {variant_id} no longer exists")
        in_flight = status in (GenerationStatus.PENDING, GenerationStatus.GENERATING)
        raise ReplayConflictError(
            f"variant {variant_id} is {status}, not failed"
            + (" (a replay or retry is already in flight)" if in_flight else "")
        )
    order_id: uuid.UUID = reset["order_id"]
    user_id: uuid.UUID = await conn.fetchval("SELECT user_id FROM orders WHERE id = $1", order_id)
    await rearm_order(conn, order_id)
    request = VariantRequested(
        variant_id=variant_id,
        order_id=order_id,
        variant_number=reset["variant_number"],
        reason=reason,
        correlation_id=correlation_id,
    )
    await enqueue(
        conn,
        VariantStatusChanged(
            variant_id=variant_id,
            order_id=order_id,
            user_id=user_id,
            variant_number=reset["variant_number"],
            status=GenerationStatus.PENDING,
            attempts=0,
            error=None,
            correlation_id=correlation_id,
        ),
        request,
    )
    return Requeued(reset, request)


async def replay_failed_job(
    conn: asyncpg.Connection, job_id: uuid.UUID, *, correlation_id: str | None = None
) -> Replayed:
    """Requeue the row's variant (reason ``replay``) and mark the row ``replayed_at``."""
    job = await conn.fetchrow(
        "SELECT subject, variant_id, payment_id, event_data->>'stray_charge_id' AS stray"
        " FROM failed_jobs WHERE id = $1 FOR UPDATE",
        job_id,
    )
    if job is None:
        raise FailedJobNotFoundError(f"no failed job {job_id}")
    if job["subject"] == REFUND_SUBJECT and job["stray"] is not None:
        return await _replay_stray_refund(conn, job_id, uuid.UUID(job["stray"]))
    if job["subject"] == REFUND_SUBJECT and job["payment_id"] is not None:
        return await _replay_refund(conn, job_id, job["payment_id"])
    variant_id: uuid.UUID | None = job["variant_id"]
    if job["subject"] != SUBJECT_VARIANT_REQUESTED or variant_id is None:
        raise NotReplayableError(
            f"failed job {job_id} is a {job['subject']} message, not a variant request:"
            " there is nothing to replay (inspect it and fix its sender instead)"
        )
    try:
        requeued = await requeue_failed_variant(
            conn, variant_id, reason=RequestReason.REPLAY, correlation_id=correlation_id
        )
    except ReplayError as error:
        raise type(error)(f"failed job {job_id}: {error}") from error
    await conn.execute("UPDATE failed_jobs SET replayed_at = now() WHERE id = $1", job_id)
    return Replayed(job_id, variant_id, requeued.request.order_id, requeued.request.event_id)


async def _replay_refund(
    conn: asyncpg.Connection, job_id: uuid.UUID, payment_id: uuid.UUID
) -> Replayed:
    """The refund is due again (the API's payments worker tries it); 409 unless the payment
    is still ``refund_pending``."""
    order_id = await conn.fetchval(
        "UPDATE payments SET next_refund_at = now(), refund_attempts = 0"
        " WHERE id = $1 AND status = 'refund_pending' RETURNING order_id",
        payment_id,
    )
    if order_id is None:
        status = await conn.fetchval("SELECT status::text FROM payments WHERE id = $1", payment_id)
        raise ReplayConflictError(
            f"failed job {job_id}: payment {payment_id} is {status or 'gone'},"
            " not refund_pending: there is no refund to try again"
        )
    await conn.execute("UPDATE failed_jobs SET replayed_at = now() WHERE id = $1", job_id)
    return Replayed(job_id, None, order_id, None, payment_id)


async def _replay_stray_refund(
    conn: asyncpg.Connection, job_id: uuid.UUID, stray_id: uuid.UUID
) -> Replayed:
    """A second charge's refund is due again; 409 unless it is still ``refund_pending``."""
    row = await conn.fetchrow(
        "UPDATE stray_charges s SET next_refund_at = now(), refund_attempts = 0"
        " FROM payments p WHERE s.id = $1 AND s.status = 'refund_pending' AND p.id = s.payment_id"
        " RETURNING s.payment_id, p.order_id",
        stray_id,
    )
    if row is None:
        status = await conn.fetchval(
            "SELECT status::text FROM stray_charges WHERE id = $1", stray_id
        )
        raise ReplayConflictError(
            f"failed job {job_id}: second charge {stray_id} is {status or 'gone'},"
            " not refund_pending: there is no refund to try again"
        )
    await conn.execute("UPDATE failed_jobs SET replayed_at = now() WHERE id = $1", job_id)
    return Replayed(job_id, None, row["order_id"], None, row["payment_id"])


async def replayable_job_ids(conn: asyncpg.Connection) -> list[uuid.UUID]:
    """Open rows about variant requests whose variant is ``failed`` now (one per variant, its
    newest row) and open refund rows whose payment (or second charge) is still
    ``refund_pending``, oldest first."""
    rows = await conn.fetch(
        """
        SELECT id, created_at FROM (
            SELECT DISTINCT ON (f.variant_id) f.id, f.created_at
            FROM failed_jobs f
            JOIN song_variants v ON v.id = f.variant_id
            WHERE f.resolved_at IS NULL AND f.subject = $1 AND v.status = 'failed'
            ORDER BY f.variant_id, f.created_at DESC, f.id DESC
        ) newest
        UNION ALL
        SELECT id, created_at FROM (
            SELECT DISTINCT ON (f.payment_id) f.id, f.created_at
            FROM failed_jobs f
            JOIN payments p ON p.id = f.payment_id
            WHERE f.resolved_at IS NULL AND f.subject = $2 AND p.status = 'refund_pending'
              AND f.event_data->>'stray_charge_id' IS NULL
            ORDER BY f.payment_id, f.created_at DESC, f.id DESC
        ) refunds
        UNION ALL
        SELECT id, created_at FROM (
            SELECT DISTINCT ON (s.id) f.id, f.created_at
            FROM failed_jobs f
            JOIN stray_charges s ON s.id::text = f.event_data->>'stray_charge_id'
            WHERE f.resolved_at IS NULL AND f.subject = $2 AND s.status = 'refund_pending'
            ORDER BY s.id, f.created_at DESC, f.id DESC
        ) stray_refunds
        ORDER BY created_at, id
        """,
        SUBJECT_VARIANT_REQUESTED,
        REFUND_SUBJECT,
    )
    return [row["id"] for row in rows]
