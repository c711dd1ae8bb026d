"""failed_jobs writes and reads of the dead-letter service. Each takes a connection that is in a
service_role transaction (``shared.db.transaction(pool, Caller.service())``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uuid

    import asyncpg

    from services.deadletter.records import FailureRecord

__all__ = ["insert_failure", "original_event_recorded"]

# A row about a variant that is complete already (an advisory that came after the variant's
# last delivery completed it, or a forged one) is born resolved: completion resolves the open
# rows, and this one would otherwise stay open for ever, its replay refused.
_INSERT = """
INSERT INTO failed_jobs (subject, service, event_data, event_text, error_type, error, attempts,
                         message_id, correlation_id, variant_id, resolved_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
        CASE WHEN EXISTS (SELECT 1 FROM song_variants WHERE id = $10 AND status = 'complete')
             THEN now() END)
ON CONFLICT (message_id) DO NOTHING
RETURNING id
"""


async def insert_failure(conn: asyncpg.Connection, record: FailureRecord) -> uuid.UUID | None:
    """Store ``record``; None when its message id is already stored (a redelivery)."""
    row_id: uuid.UUID | None = await conn.fetchval(
        _INSERT,
        record.subject,
        record.service,
        record.event_data,
        record.event_text,
        record.error_type,
        record.error,
        record.attempts,
        record.message_id,
        record.correlation_id,
        record.variant_id,
    )
    return row_id


async def original_event_recorded(conn: asyncpg.Connection, event_id: str) -> bool:
    """Whether a row already holds the event ``event_id`` (a handler dead-lettered it)."""
    found = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM failed_jobs WHERE event_data ->> 'event_id' = $1)",
        event_id,
    )
    return bool(found)
