"""Seeding and looking up for the dead-letter tests."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from shared.db import Caller, transaction
from shared.enums import GenerationStatus, RequestReason
from shared.events import (
    SUBJECT_VARIANT_REQUESTED,
    DeadLettered,
    VariantRequested,
    deadletter_subject,
)
from shared.rows import FailedJobRow, SongVariantRow

if TYPE_CHECKING:
    import asyncpg
    from nats.js import JetStreamContext


async def seed_order(
    pool: asyncpg.Pool, *statuses: GenerationStatus
) -> tuple[uuid.UUID, uuid.UUID, list[uuid.UUID]]:
    """An order of a new user with one variant per status: (order id, user id, variant ids)."""
    user_id = uuid.uuid4()
    async with transaction(pool, Caller.service()) as conn:
        order_id = await conn.fetchval(
            "INSERT INTO orders (user_id, recipient_name, occasion, genre)"
            " VALUES ($1, 'Ada', 'birthday', 'pop') RETURNING id",
            user_id,
        )
        variant_ids = []
        for number, status in enumerate(statuses, start=1):
            final = status in (GenerationStatus.COMPLETE, GenerationStatus.FAILED)
            variant_ids.append(
                await conn.fetchval(
                    "INSERT INTO song_variants (order_id, variant_number, status, attempts,"
                    " error, storage_path, completed_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7 THEN now() END) RETURNING id",
                    order_id,
                    number,
                    status.value,
                    3 if final else 0,
                    "boom" if status is GenerationStatus.FAILED else None,
                    f"{user_id}/{order_id}/variant-{number}.mp3"
                    if status is GenerationStatus.COMPLETE
                    else None,
                    final,
                )
            )
    return order_id, user_id, variant_ids


def requested(order_id: uuid.UUID, variant_id: uuid.UUID, number: int = 1) -> VariantRequested:
    return VariantRequested(
        variant_id=variant_id,
        order_id=order_id,
        variant_number=number,
        reason=RequestReason.CREATED,
        correlation_id=f"req-{uuid.uuid4().hex[:8]}",
    )


def envelope_for(
    original: Any,
    *,
    original_subject: str = SUBJECT_VARIANT_REQUESTED,
    service: str = "generator",
    error: str = "provider exploded",
    correlation_id: str | None = None,
) -> DeadLettered:
    """The envelope a service publishes when it gives up on ``original``."""
    event = original.model_dump(mode="json") if hasattr(original, "model_dump") else original
    return DeadLettered(
        type=f"deadletter.{service}",
        original_subject=original_subject,
        original_event=event,
        error_type="ProviderError",
        error=error,
        attempts=3,
        service=service,
        correlation_id=correlation_id,
    )


async def publish_envelope(
    js: JetStreamContext, envelope: DeadLettered, *, msg_id: str | None = None
) -> int:
    headers = envelope.headers()
    if msg_id is not None:
        headers["Nats-Msg-Id"] = msg_id
    ack = await js.publish(
        deadletter_subject(envelope.service), envelope.to_json(), headers=headers
    )
    return ack.seq


async def failed_jobs(pool: asyncpg.Pool, where: str, *args: Any) -> list[FailedJobRow]:
    async with transaction(pool, Caller.service()) as conn:
        rows = await conn.fetch(f"SELECT * FROM failed_jobs WHERE {where}", *args)
    return [FailedJobRow.model_validate(dict(row)) for row in rows]


async def variant(pool: asyncpg.Pool, variant_id: uuid.UUID) -> SongVariantRow:
    async with transaction(pool, Caller.service()) as conn:
        row = await conn.fetchrow(
            "SELECT id, order_id, variant_number, status, share_token, storage_path, attempts,"
            " error, title, lyrics, duration_seconds, created_at, updated_at, started_at,"
            " completed_at FROM song_variants WHERE id = $1",
            variant_id,
        )
    assert row is not None
    return SongVariantRow.model_validate(dict(row))


async def consumed_through(js: JetStreamContext, stream: str, durable: str, seq: int) -> bool:
    """Whether ``durable`` has acknowledged every message up to stream sequence ``seq``."""
    info = await js.consumer_info(stream, durable)
    return info.ack_floor is not None and (info.ack_floor.stream_seq or 0) >= seq
