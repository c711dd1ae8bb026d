"""Messages that SERENADE's consumers gave up on without any handler reporting it: the server's
advisories lead the dead-letter service to the original, which it stores; a variant whose request
died that way becomes failed, and its events are published."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import nats.errors
import orjson
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from services.deadletter.handlers import handle_advisory
from shared.enums import GenerationStatus
from shared.events import (
    STREAM_NAME,
    SUBJECT_ORDER_COMPLETED,
    SUBJECT_VARIANT_REQUESTED,
    SUBJECT_VARIANT_STATUS,
)
from shared.storage import audio_path, storage_from_url
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
    from shared.settings import Settings


@pytest.fixture
async def recorder(dl_nats_url: str) -> AsyncIterator[SubjectRecorder]:
    recording = await SubjectRecorder().start(dl_nats_url, "serenade.>")
    yield recording
    await recording.stop()


async def _crashing_consumer(
    js: JetStreamContext, name: str, subject: str, *, max_deliver: int
) -> JetStreamContext.PullSubscription:
    """A consumer like the generator's, for messages published from now on."""
    return await js.pull_subscribe(
        subject,
        durable=name,
        stream=STREAM_NAME,
        config=ConsumerConfig(
            max_deliver=max_deliver, ack_wait=1.0, deliver_policy=DeliverPolicy.NEW
        ),
    )


async def _rows_of_variant(pool: asyncpg.Pool, variant_id: uuid.UUID) -> list[FailedJobRow]:
    return await failed_jobs(pool, "variant_id = $1", variant_id)


async def test_request_whose_handler_died_on_every_delivery_fails_the_variant(
    deadletter: FastStream,
    js: JetStreamContext,
    dl_pool: asyncpg.Pool,
    recorder: SubjectRecorder,
    dl_settings: Settings,
) -> None:
    order_id, user_id, (done_id, doomed_id) = await seed_order(
        dl_pool, GenerationStatus.COMPLETE, GenerationStatus.PENDING
    )
    # The complete variant's audio, and what a killed attempt stored for the doomed one.
    storage = storage_from_url(dl_settings.resolved_storage_url)
    done_audio = audio_path(user_id, order_id, 1, "mp3")
    lost_audio = audio_path(user_id, order_id, 2, "wav")
    for key in (done_audio, lost_audio):
        await storage.put(key, b"audio", "audio/mpeg")
    consumer = await _crashing_consumer(
        js, "crashing-generator", SUBJECT_VARIANT_REQUESTED, max_deliver=2
    )
    request = requested(order_id, doomed_id, number=2)
    ack = await js.publish(request.subject, request.to_json(), headers=request.headers())

    # Each delivery is taken and never answered, as by a process killed mid-message; the third
    # fetch finds the server has given up.
    for _ in range(2):
        (message,) = await consumer.fetch(1, timeout=5)
        assert message.metadata.sequence.stream == ack.seq
    with pytest.raises(nats.errors.TimeoutError):
        await consumer.fetch(1, timeout=3)

    (row,) = await wait_for(lambda: _rows_of_variant(dl_pool, doomed_id), what="the stored request")
    assert row.error_type == "MaxDeliveriesExceeded"
    assert row.event_data == request.model_dump(mode="json")
    assert row.subject == SUBJECT_VARIANT_REQUESTED
    assert row.service == "crashing-generator"
    assert row.attempts == 2
    assert row.correlation_id == request.correlation_id
    assert row.message_id == f"advisory:{STREAM_NAME}:{ack.seq}:crashing-generator"

    failed = await variant(dl_pool, doomed_id)
    assert failed.status is GenerationStatus.FAILED
    assert failed.error is not None
    assert "2 attempts" in failed.error
    assert (await variant(dl_pool, done_id)).status is GenerationStatus.COMPLETE

    async def lost_audio_deleted() -> bool:  # after the commit that failed the variant
        return not await storage.exists(lost_audio)

    await wait_for(lost_audio_deleted, what="the lost attempt's audio deleted")
    assert await storage.exists(done_audio)

    def published(subject: str) -> list[dict[str, object]]:
        return [p for p in recorder.payloads(subject) if p.get("order_id") == str(order_id)]

    async def announced() -> bool:
        return bool(published(SUBJECT_ORDER_COMPLETED))

    await wait_for(announced, what="orders.completed")
    (status,) = published(SUBJECT_VARIANT_STATUS)
    assert (status["variant_id"], status["status"]) == (str(doomed_id), "failed")
    assert status["user_id"] == str(user_id)
    (completed,) = published(SUBJECT_ORDER_COMPLETED)
    assert completed["status"] == "failed"
    in_stream = await js.get_last_msg(STREAM_NAME, SUBJECT_ORDER_COMPLETED)
    assert orjson.loads(in_stream.data or b"{}")["order_id"] == str(order_id)
    await js.delete_consumer(STREAM_NAME, "crashing-generator")


async def test_terminated_message_is_stored_verbatim(
    deadletter: FastStream, js: JetStreamContext, dl_pool: asyncpg.Pool
) -> None:
    consumer = await _crashing_consumer(
        js, "strict-reader", "serenade.orders.created", max_deliver=5
    )
    poison = b"order #12 \x01 not json at all"
    ack = await js.publish("serenade.orders.created", poison, headers={"X-Correlation-Id": "c-7"})

    (message,) = await consumer.fetch(1, timeout=5)
    await message.term()

    message_id = f"advisory:{STREAM_NAME}:{ack.seq}:strict-reader"

    async def stored() -> list[FailedJobRow]:
        return await failed_jobs(dl_pool, "message_id = $1", message_id)

    (row,) = await wait_for(stored, what="the terminated message")
    assert row.error_type == "MessageTerminated"
    assert row.event_text == poison.decode()
    assert row.event_data is None
    assert row.subject == "serenade.orders.created"
    assert row.correlation_id == "c-7"
    await js.delete_consumer(STREAM_NAME, "strict-reader")


def _advisory(kind: str, seq: int, consumer: str) -> tuple[bytes, str]:
    body = {
        "type": "io.nats.jetstream.advisory.v1.max_deliver",
        "id": uuid.uuid4().hex,
        "stream": STREAM_NAME,
        "consumer": consumer,
        "stream_seq": seq,
        "deliveries": 3,
    }
    return orjson.dumps(body), f"$JS.EVENT.ADVISORY.CONSUMER.{kind}.{STREAM_NAME}.{consumer}"


async def test_advisory_is_stored_once_and_not_after_its_handler_reported_it(
    deadletter: FastStream, js: JetStreamContext, dl_pool: asyncpg.Pool
) -> None:
    order_id, _, (variant_id, other_id) = await seed_order(
        dl_pool, GenerationStatus.FAILED, GenerationStatus.PENDING
    )
    # The generator dead-lettered this request itself: an advisory for it adds nothing.
    reported = requested(order_id, variant_id)
    reported_ack = await js.publish(
        reported.subject, reported.to_json(), headers=reported.headers()
    )
    envelope = envelope_for(reported)
    await publish_envelope(js, envelope)
    await wait_for(lambda: _rows_of_variant(dl_pool, variant_id), what="the envelope's row")
    data, subject = _advisory("MAX_DELIVERIES", reported_ack.seq, "generator")
    assert await handle_advisory(dl_pool, js, data, subject=subject, stream_seq=None) is None
    assert len(await _rows_of_variant(dl_pool, variant_id)) == 1

    # An advisory handled twice (redelivered before its ack) is stored once.
    unreported = requested(order_id, other_id, number=2)
    ack = await js.publish(unreported.subject, unreported.to_json(), headers=unreported.headers())
    data, subject = _advisory("MAX_DELIVERIES", ack.seq, "generator")
    first = await handle_advisory(dl_pool, js, data, subject=subject, stream_seq=None)
    second = await handle_advisory(dl_pool, js, data, subject=subject, stream_seq=None)
    assert first is not None
    assert second is None
    assert len(await _rows_of_variant(dl_pool, other_id)) == 1


async def test_advisory_whose_message_is_gone_or_unreadable_is_still_stored(
    deadletter: FastStream, js: JetStreamContext, dl_pool: asyncpg.Pool
) -> None:
    data, subject = _advisory("MSG_TERMINATED", 10_000_000, "ghost")
    row_id = await handle_advisory(dl_pool, js, data, subject=subject, stream_seq=None)
    (row,) = await failed_jobs(dl_pool, "id = $1", row_id)
    assert row.error_type == "MessageTerminated"
    assert row.subject == subject
    assert row.event_data == orjson.loads(data)
    assert "no longer in stream" in row.error

    garbage_id = await handle_advisory(dl_pool, js, b"{oops", subject=subject, stream_seq=4242)
    (garbage,) = await failed_jobs(dl_pool, "id = $1", garbage_id)
    assert (garbage.error_type, garbage.event_text) == ("MalformedAdvisory", "{oops")
