"""Replay: the variant is requested again through the outbox; the row is replayed, then resolved
when the variant completes; a replay in flight is never doubled."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from shared.db import Caller, transaction
from shared.enums import GenerationStatus
from shared.events import (
    STREAM_NAME,
    SUBJECT_ORDER_COMPLETED,
    SUBJECT_VARIANT_REQUESTED,
    SUBJECT_VARIANT_STATUS,
)
from shared.lifecycle import complete_variant, start_attempt
from shared.outbox import enqueue
from shared.requeue import (
    FailedJobNotFoundError,
    NotReplayableError,
    ReplayConflictError,
    replay_failed_job,
)
from tests.helpers import SubjectRecorder, wait_for
from tests.integration.deadletter.support import (
    envelope_for,
    failed_jobs,
    publish_envelope,
    requested,
    seed_order,
    variant,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg
    from faststream import FastStream
    from nats.js import JetStreamContext

    from shared.rows import FailedJobRow


@pytest.fixture
async def recorder(dl_nats_url: str) -> AsyncIterator[SubjectRecorder]:
    recording = await SubjectRecorder().start(dl_nats_url, "serenade.>")
    yield recording
    await recording.stop()


async def _stored_failure(
    pool: asyncpg.Pool, js: JetStreamContext, order_id: uuid.UUID, variant_id: uuid.UUID
) -> tuple[FailedJobRow, dict[str, object]]:
    original = requested(order_id, variant_id)
    envelope = envelope_for(original)
    await publish_envelope(js, envelope)

    async def row() -> list[FailedJobRow]:
        return await failed_jobs(pool, "message_id = $1", str(envelope.event_id))

    (stored,) = await wait_for(row, what="the dead-letter row")
    return stored, original.model_dump(mode="json")


async def test_replay_after_the_fix_requeues_then_resolves_when_the_variant_completes(
    deadletter: FastStream,
    js: JetStreamContext,
    dl_pool: asyncpg.Pool,
    recorder: SubjectRecorder,
) -> None:
    order_id, user_id, (variant_id,) = await seed_order(dl_pool, GenerationStatus.FAILED)
    job, original = await _stored_failure(dl_pool, js, order_id, variant_id)

    async with transaction(dl_pool, Caller.service()) as conn:
        replayed = await replay_failed_job(conn, job.id)

    pending = await variant(dl_pool, variant_id)
    assert (pending.status, pending.attempts, pending.error) == (GenerationStatus.PENDING, 0, None)
    (row,) = await failed_jobs(dl_pool, "id = $1", job.id)
    assert row.replayed_at is not None
    assert row.resolved_at is None

    def for_variant(subject: str) -> list[dict[str, object]]:
        return [p for p in recorder.payloads(subject) if p.get("variant_id") == str(variant_id)]

    async def requeued() -> list[dict[str, object]]:
        return for_variant(SUBJECT_VARIANT_REQUESTED)

    (request,) = await wait_for(requeued, what="the replayed request on NATS")
    assert request["reason"] == "replay"
    assert request["event_id"] == str(replayed.request_event_id) != original["event_id"]
    assert (request["order_id"], request["variant_number"]) == (str(order_id), 1)
    in_stream = await js.get_last_msg(STREAM_NAME, SUBJECT_VARIANT_REQUESTED)
    assert in_stream.headers is not None
    assert in_stream.headers["Nats-Msg-Id"] == str(replayed.request_event_id)
    (status,) = for_variant(SUBJECT_VARIANT_STATUS)
    assert (status["status"], status["attempts"]) == ("pending", 0)

    # While the replay is in flight, a second one is refused and changes nothing.
    with pytest.raises(ReplayConflictError, match="in flight"):
        async with transaction(dl_pool, Caller.service()) as conn:
            await replay_failed_job(conn, job.id)

    # The generator (simulated: it is built elsewhere) now succeeds.
    async with transaction(dl_pool, Caller.service()) as conn:
        started = await start_attempt(conn, variant_id, user_id)
        assert started is not None
        attempt, generating = started
        events = await complete_variant(
            conn,
            variant_id,
            user_id,
            attempt=attempt,
            storage_path=f"{user_id}/{order_id}/variant-1.mp3",
            title="For Ada",
            lyrics="la la la",
            duration_seconds=42.0,
        )
        await enqueue(conn, generating, *events)

    (row,) = await failed_jobs(dl_pool, "id = $1", job.id)
    assert row.replayed_at is not None
    assert row.resolved_at is not None

    async def completed() -> list[dict[str, object]]:
        return [
            p
            for p in recorder.payloads(SUBJECT_ORDER_COMPLETED)
            if p.get("order_id") == str(order_id)
        ]

    (announced,) = await wait_for(completed, what="orders.completed after the replay")
    assert announced["status"] == "complete"
    with pytest.raises(ReplayConflictError, match="complete"):
        async with transaction(dl_pool, Caller.service()) as conn:
            await replay_failed_job(conn, job.id)


async def test_rows_that_are_not_variant_requests_are_not_replayable(
    deadletter: FastStream, js: JetStreamContext, dl_pool: asyncpg.Pool
) -> None:
    envelope = envelope_for("poison", service="api", original_subject="serenade.orders.created")
    await publish_envelope(js, envelope)

    async def row() -> list[FailedJobRow]:
        return await failed_jobs(dl_pool, "message_id = $1", str(envelope.event_id))

    (poison,) = await wait_for(row, what="the poison row")

    with pytest.raises(NotReplayableError, match="not a variant request"):
        async with transaction(dl_pool, Caller.service()) as conn:
            await replay_failed_job(conn, poison.id)
    with pytest.raises(FailedJobNotFoundError):
        async with transaction(dl_pool, Caller.service()) as conn:
            await replay_failed_job(conn, uuid.uuid4())
    (unchanged,) = await failed_jobs(dl_pool, "id = $1", poison.id)
    assert unchanged.replayed_at is None
