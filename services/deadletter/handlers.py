"""One plain function per kind of message, with its dependencies passed in.

Each runs one service_role transaction. Any exception means "not stored": the subscriber then
leaves the message unacknowledged (NAK with a delay), so it waits in its stream and comes back.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from nats.js.errors import NotFoundError

from services.deadletter import metrics
from services.deadletter.advisories import AdvisoryError, parse_advisory
from services.deadletter.records import (
    Reason,
    record_from_advisory,
    record_from_envelope,
    record_from_malformed_advisory,
)
from services.deadletter.store import insert_failure, original_event_recorded
from shared.db import Caller, transaction
from shared.events import SUBJECT_VARIANT_REQUESTED, VariantStatusChanged
from shared.lifecycle import fail_variant, load_variant
from shared.storage import discard_audio
from shared.unit_of_work import unit_of_work

if TYPE_CHECKING:
    import uuid
    from collections.abc import Callable, Mapping

    import asyncpg
    from nats.js import JetStreamContext

    from services.deadletter.advisories import Advisory
    from services.deadletter.records import FailureRecord
    from shared.events import Event
    from shared.storage import Storage

__all__ = ["handle_advisory", "store_envelope"]

_log = logging.getLogger("serenade.deadletter")


async def store_envelope(
    pool: asyncpg.Pool,
    data: bytes,
    *,
    subject: str,
    headers: Mapping[str, str] | None,
    stream_seq: int | None,
) -> uuid.UUID | None:
    """Store one ``serenade.deadletter.<service>`` message; None when it was already stored."""
    record = record_from_envelope(data, subject=subject, headers=headers, stream_seq=stream_seq)
    async with transaction(pool, Caller.service()) as conn:
        row_id = await insert_failure(conn, record)
    _report(record, row_id)
    return row_id


async def handle_advisory(
    pool: asyncpg.Pool,
    js: JetStreamContext,
    data: bytes,
    *,
    subject: str,
    stream_seq: int | None,
    storage: Storage | None = None,
    announce: Callable[[], None] | None = None,
) -> uuid.UUID | None:
    """Store the message a consumer gave up on, fetched from its stream by sequence, and fail
    the variant it requested (with its events, through the outbox) when that is not final.

    ``announce`` wakes the outbox relay once the events are committed; ``storage``, when
    given, loses the audio a lost attempt of a variant failed here may have left."""
    try:
        advisory = parse_advisory(data, subject)
    except AdvisoryError as problem:
        record = record_from_malformed_advisory(
            data, subject=subject, problem=str(problem), stream_seq=stream_seq
        )
        async with transaction(pool, Caller.service()) as conn:
            row_id = await insert_failure(conn, record)
        _report(record, row_id)
        return row_id

    record = await _record_with_original(js, advisory)
    original_event_id = _field(record.event_data, "event_id")
    async with unit_of_work(pool, Caller.service(), wake=announce) as uow:
        conn = uow.conn
        if isinstance(original_event_id, str) and await original_event_recorded(
            conn, original_event_id
        ):
            # Its handler dead-lettered it (and failed the variant) before the server gave up.
            _log.info(
                "advisory for a failure already stored",
                extra={"message_id": record.message_id, "original_event_id": original_event_id},
            )
            return None
        row_id = await insert_failure(conn, record)
        events: list[Event] = []
        # Only the first handling fails the variant: a redelivered advisory must not fail a
        # variant that an operator has replayed since.
        if row_id is not None and record.subject == SUBJECT_VARIANT_REQUESTED:
            events = await _fail_requested_variant(conn, record, advisory)
            await uow.enqueue(*events)
    _report(record, row_id)
    if events:
        failed = next(e for e in events if isinstance(e, VariantStatusChanged))
        if storage is not None:
            await discard_audio(storage, failed.user_id, failed.order_id, failed.variant_number)
        metrics.VARIANTS_FAILED.inc()
        _log.info(
            "variant failed: its request was given up",
            extra={"variant_id": str(record.variant_id), "events": [e.type for e in events]},
        )
    return row_id


async def _record_with_original(js: JetStreamContext, advisory: Advisory) -> FailureRecord:
    try:
        original = await js.get_msg(advisory.stream, advisory.stream_seq)
    except NotFoundError:
        return record_from_advisory(
            advisory, original_subject=None, original_data=None, original_headers=None
        )
    return record_from_advisory(
        advisory,
        original_subject=original.subject or advisory.subject,
        original_data=original.data,
        original_headers=original.headers,
    )


def _variant_error(advisory: Advisory) -> str:
    if advisory.kind == Reason.MAX_DELIVERIES:
        return f"generation gave up after {advisory.deliveries} attempts that never finished"
    return f"generation was abandoned: {advisory.consumer} terminated the request"


async def _fail_requested_variant(
    conn: asyncpg.Connection, record: FailureRecord, advisory: Advisory
) -> list[Event]:
    if record.variant_id is None:
        return []
    found = await load_variant(conn, record.variant_id)
    if found is None or found.variant.status.is_final:
        return []
    return await fail_variant(
        conn,
        record.variant_id,
        found.order.user_id,
        error=_variant_error(advisory),
        correlation_id=record.correlation_id,
    )


def _field(event_data: Any, name: str) -> Any:
    return event_data.get(name) if isinstance(event_data, dict) else None


def _report(record: FailureRecord, row_id: uuid.UUID | None) -> None:
    fields = {
        "message_id": record.message_id,
        "subject": record.subject,
        # Not "service": that field of every line names the service writing it (deadletter).
        "failed_service": record.service,
        "error_type": record.error_type,
        "reason": record.reason,
        "variant_id": str(record.variant_id) if record.variant_id else None,
        "order_id": _field(record.event_data, "order_id"),
        "correlation_id": record.correlation_id,
    }
    if row_id is None:
        metrics.DUPLICATES_SKIPPED.labels(reason=record.reason).inc()
        _log.info("failure already stored", extra=fields)
        return
    metrics.ROWS_STORED.labels(reason=record.reason).inc()
    _log.info("failure stored", extra={"failed_job_id": str(row_id), **fields})
