"""The generator in this process against real nats-server and PostgreSQL: the lifecycle of a
variant, retries, dead letters, duplicates and poison."""

from __future__ import annotations

import uuid
import wave
from typing import TYPE_CHECKING

import orjson

from shared.db import Caller, transaction
from shared.storage import audio_path
from tests.helpers import wait_for

from .support import (
    all_final,
    all_requests_settled,
    events,
    files_under,
    publish_raw,
    publish_request,
    request_all,
    running_generator,
    seed_order,
    statuses,
    variants_of,
)

if TYPE_CHECKING:
    from .conftest import GeneratorEnv

STATUS = "serenade.variants.status"
COMPLETED = "serenade.orders.completed"
DEADLETTER = "serenade.deadletter.generator"


async def _outbox_count(env: GeneratorEnv, subject: str, order_id: uuid.UUID) -> int:
    async with transaction(env.pool, Caller.service()) as conn:
        count = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE subject = $1 AND payload ->> 'order_id' = $2",
            subject,
            str(order_id),
        )
    return int(count)


async def test_three_variants_go_pending_generating_complete_with_files_and_one_completion(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    order = await seed_order(env.pool, variants=3, story="we met at a bus stop")
    async with running_generator(env.settings):
        await request_all(env.js, order, correlation_id="req-happy-1")
        rows = await wait_for(lambda: all_final(env.pool, order.order_id), what="3 final variants")
        await wait_for(
            lambda: _async(events(env.recorder, COMPLETED)), what="orders.completed event"
        )

    for number, row in enumerate(rows, start=1):
        assert row.status == "complete"
        assert row.attempts == 1
        assert row.error is None
        assert row.storage_path == audio_path(order.user_id, order.order_id, number, "wav")
        assert row.title
        assert "Ana" in row.title
        assert row.lyrics
        assert row.duration_seconds is not None
        assert row.duration_seconds > 0
        assert row.started_at is not None
        assert row.completed_at is not None
        with wave.open(str(env.storage_root / row.storage_path), "rb") as audio:
            assert audio.getnframes() > 0
        assert statuses(env.recorder, row.id) == ["generating", "complete"]
    assert [path.name for path in files_under(env.storage_root)] == [
        "variant-1.wav",
        "variant-2.wav",
        "variant-3.wav",
    ]

    completed = events(env.recorder, COMPLETED)
    assert len(completed) == 1
    assert completed[0]["order_id"] == str(order.order_id)
    assert completed[0]["user_id"] == str(order.user_id)
    assert completed[0]["status"] == "complete"
    assert await _outbox_count(env, COMPLETED, order.order_id) == 1
    # It follows every variant's completion, and every event carries the correlation id.
    subjects = [
        msg.subject for msg in env.recorder.messages if msg.subject != "serenade.variants.requested"
    ]
    assert subjects[-1] == COMPLETED
    for msg in env.recorder.messages:
        if msg.subject in {STATUS, COMPLETED}:
            assert orjson.loads(msg.data)["correlation_id"] == "req-happy-1"
            assert msg.headers is not None
            assert msg.headers["X-Correlation-Id"] == "req-happy-1"
            assert msg.headers["Nats-Msg-Id"] == orjson.loads(msg.data)["event_id"]


async def _async(value: object) -> object:
    return value


async def test_a_failed_first_attempt_is_retried_and_completes_with_two_attempts(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    settings = env.with_settings(provider="tests.integration.generator.providers:FlakyProvider")
    order = await seed_order(env.pool, variants=1)
    async with running_generator(settings):
        await request_all(env.js, order)
        [row] = await wait_for(lambda: all_final(env.pool, order.order_id), what="final variant")
        await wait_for(lambda: _async(events(env.recorder, COMPLETED)), what="orders.completed")

    assert row.status == "complete"
    assert row.attempts == 2
    assert row.error is None
    assert statuses(env.recorder, row.id) == ["generating", "pending", "generating", "complete"]
    pending = [e for e in events(env.recorder, STATUS) if e["status"] == "pending"]
    assert pending[0]["error"] == "the song service hung up (first attempt)"
    assert pending[0]["attempts"] == 1
    assert events(env.recorder, DEADLETTER) == []
    assert [e["status"] for e in events(env.recorder, COMPLETED)] == ["complete"]


async def test_a_variant_failing_every_attempt_is_failed_and_dead_lettered_once(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    settings = env.with_settings(provider_failure_rate=1.0, max_attempts=3)
    order = await seed_order(env.pool, variants=1)
    async with running_generator(settings):
        [request] = await request_all(env.js, order, correlation_id="req-doomed")
        [row] = await wait_for(lambda: all_final(env.pool, order.order_id), what="final variant")
        await wait_for(lambda: _async(events(env.recorder, COMPLETED)), what="orders.completed")
        await wait_for(lambda: _async(events(env.recorder, DEADLETTER)), what="dead letter")

    assert row.status == "failed"
    assert row.attempts == 3
    assert row.error is not None
    assert "injected failure" in row.error
    assert statuses(env.recorder, row.id) == [
        "generating", "pending", "generating", "pending", "generating", "failed",
    ]  # fmt: skip
    [envelope] = events(env.recorder, DEADLETTER)
    assert envelope["type"] == "deadletter.generator"
    assert envelope["service"] == "generator"
    assert envelope["original_subject"] == "serenade.variants.requested"
    assert envelope["original_event"] == request.model_dump(mode="json")
    assert envelope["error_type"] == "InjectedFailure"
    assert envelope["error"] == row.error
    assert envelope["attempts"] == 3
    assert envelope["correlation_id"] == "req-doomed"
    assert envelope["failed_at"]
    [message] = [m for m in env.recorder.messages if m.subject == DEADLETTER]
    assert message.headers is not None
    assert message.headers["Nats-Msg-Id"] == envelope["event_id"]
    [completed] = events(env.recorder, COMPLETED)
    assert completed["status"] == "failed"
    assert await _outbox_count(env, COMPLETED, order.order_id) == 1
    assert files_under(env.storage_root) == []


async def test_a_duplicate_request_for_a_complete_variant_changes_nothing(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    order = await seed_order(env.pool, variants=1)
    async with running_generator(env.settings):
        await request_all(env.js, order)
        [before] = await wait_for(lambda: all_final(env.pool, order.order_id), what="complete")
        [audio] = files_under(env.storage_root)
        modified = audio.stat().st_mtime_ns
        async with transaction(env.pool, Caller.service()) as conn:
            outbox_before = await conn.fetchval("SELECT count(*) FROM outbox")

        duplicate = await publish_request(env.js, order.variant_ids[0], order.order_id, 1)
        await wait_for(lambda: all_requests_settled(env.js), what="duplicate settled")

        [after] = await variants_of(env.pool, order.order_id)
        async with transaction(env.pool, Caller.service()) as conn:
            outbox_after = await conn.fetchval("SELECT count(*) FROM outbox")

    assert duplicate.event_id
    assert after == before
    assert outbox_after == outbox_before
    assert files_under(env.storage_root) == [audio]
    assert audio.stat().st_mtime_ns == modified
    assert statuses(env.recorder, before.id) == ["generating", "complete"]


async def test_poison_messages_are_dead_lettered_and_the_next_good_message_is_processed(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    order = await seed_order(env.pool, variants=1)
    unknown = uuid.uuid4()
    wrong_shape = {"type": "variants.requested", "variant_id": "not-a-uuid"}
    async with running_generator(env.settings.model_copy(update={"generator_concurrency": 1})):
        await publish_raw(env.js, b"\xffthis is not json {")
        await publish_raw(env.js, orjson.dumps(wrong_shape))
        ghost = await publish_request(env.js, unknown, uuid.uuid4(), 2)
        await request_all(env.js, order)
        [row] = await wait_for(lambda: all_final(env.pool, order.order_id), what="good variant")
        letters = await wait_for(
            lambda: _async(len(events(env.recorder, DEADLETTER)) == 3 and env.recorder),
            what="three dead letters",
        )
        await wait_for(lambda: all_requests_settled(env.js), what="all settled")

    assert letters
    assert row.status == "complete"
    envelopes = {e["error_type"]: e for e in events(env.recorder, DEADLETTER)}
    assert set(envelopes) == {"InvalidJSON", "InvalidEvent", "UnknownVariant"}
    assert envelopes["InvalidJSON"]["original_event"] == "\\xffthis is not json {"
    assert envelopes["InvalidEvent"]["original_event"] == wrong_shape
    assert "variant_id" in envelopes["InvalidEvent"]["error"]
    assert envelopes["UnknownVariant"]["original_event"] == ghost.model_dump(mode="json")
    assert str(unknown) in envelopes["UnknownVariant"]["error"]
    for envelope in envelopes.values():
        assert envelope["original_subject"] == "serenade.variants.requested"
        assert envelope["service"] == "generator"
        assert envelope["attempts"] == 1
