"""Envelopes on serenade.deadletter.<service> become failed_jobs rows: once, intact, never lost."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import orjson

from services.deadletter.consumers import ENVELOPE_DURABLE
from services.deadletter.handlers import store_envelope
from shared.enums import GenerationStatus
from shared.events import CORRELATION_HEADER, STREAM_NAME, deadletter_subject
from tests.helpers import wait_for
from tests.integration.deadletter.support import (
    consumed_through,
    envelope_for,
    failed_jobs,
    publish_envelope,
    requested,
    seed_order,
)

if TYPE_CHECKING:
    import asyncpg
    from faststream import FastStream
    from nats.js import JetStreamContext

    from shared.rows import FailedJobRow


async def _one_row(pool: asyncpg.Pool, message_id: str) -> FailedJobRow:
    async def found() -> list[FailedJobRow]:
        return await failed_jobs(pool, "message_id = $1", message_id)

    rows: list[FailedJobRow] = await wait_for(found, what=f"the row of {message_id}")
    assert len(rows) == 1
    return rows[0]


async def test_envelope_becomes_one_row_with_the_event_intact(
    deadletter: FastStream, js: JetStreamContext, dl_pool: asyncpg.Pool
) -> None:
    order_id, _, (variant_id,) = await seed_order(dl_pool, GenerationStatus.FAILED)
    original = requested(order_id, variant_id)
    envelope = envelope_for(original, correlation_id=original.correlation_id)

    await publish_envelope(js, envelope)

    row = await _one_row(dl_pool, str(envelope.event_id))
    assert row.event_data == original.model_dump(mode="json")
    assert row.event_text is None
    assert row.subject == "serenade.variants.requested"
    assert row.service == "generator"
    assert (row.error_type, row.error, row.attempts) == ("ProviderError", "provider exploded", 3)
    assert row.correlation_id == original.correlation_id
    assert row.variant_id == variant_id
    assert (row.replayed_at, row.resolved_at) == (None, None)


async def test_redelivered_envelope_makes_no_second_row(
    deadletter: FastStream, js: JetStreamContext, dl_pool: asyncpg.Pool
) -> None:
    order_id, _, (variant_id,) = await seed_order(dl_pool, GenerationStatus.FAILED)
    envelope = envelope_for(requested(order_id, variant_id))

    # Two publishes that JetStream cannot deduplicate (different Nats-Msg-Id): the same envelope
    # arrives twice, as it would after a sender's retry outside the duplicate window.
    await publish_envelope(js, envelope, msg_id=f"first-{uuid.uuid4()}")
    last_seq = await publish_envelope(js, envelope, msg_id=f"second-{uuid.uuid4()}")
    await wait_for(
        lambda: consumed_through(js, STREAM_NAME, ENVELOPE_DURABLE, last_seq),
        what="both deliveries acknowledged",
    )
    # A handler that committed its row and died before acknowledging gets the message again.
    again = await store_envelope(
        dl_pool,
        envelope.to_json(),
        subject=deadletter_subject("generator"),
        headers=envelope.headers(),
        stream_seq=last_seq,
    )

    assert again is None
    rows = await failed_jobs(dl_pool, "message_id = $1", str(envelope.event_id))
    assert len(rows) == 1
    assert rows[0].event_data == envelope.original_event


async def test_non_json_original_is_kept_verbatim(
    deadletter: FastStream, js: JetStreamContext, dl_pool: asyncpg.Pool
) -> None:
    raw_text = 'variant_id=42; {"half": json\n\ttabs and ünïcode'
    envelope = envelope_for(raw_text, service="api", original_subject="serenade.orders.created")

    await publish_envelope(js, envelope)

    row = await _one_row(dl_pool, str(envelope.event_id))
    assert row.event_text == raw_text
    assert row.event_data is None
    assert row.subject == "serenade.orders.created"
    assert row.variant_id is None


async def test_nul_characters_are_escaped_and_the_row_kept(
    deadletter: FastStream, js: JetStreamContext, dl_pool: asyncpg.Pool
) -> None:
    as_text = envelope_for("before\x00after", service="api")
    as_json = envelope_for({"note": "a\x00b", "k\x00": [1, "\x00"]}, service="api")

    await publish_envelope(js, as_text)
    await publish_envelope(js, as_json)

    assert (await _one_row(dl_pool, str(as_text.event_id))).event_text == "before\\u0000after"
    assert (await _one_row(dl_pool, str(as_json.event_id))).event_data == {
        "note": "a\\u0000b",
        "k\\u0000": [1, "\\u0000"],
    }


async def test_malformed_envelopes_are_stored_whole_and_block_nothing(
    deadletter: FastStream, js: JetStreamContext, dl_pool: asyncpg.Pool
) -> None:
    not_json = b"\xffthis is not an envelope"
    wrong_shape = orjson.dumps({"hello": "world", "attempts": "many"})
    ids = [f"bad-{uuid.uuid4()}", f"bad-{uuid.uuid4()}"]
    for msg_id, body in zip(ids, (not_json, wrong_shape), strict=True):
        await js.publish(
            deadletter_subject("mystery"),
            body,
            headers={"Nats-Msg-Id": msg_id, CORRELATION_HEADER: "corr-9"},
        )
    good = envelope_for({"event_id": str(uuid.uuid4())}, service="api")
    await publish_envelope(js, good)

    first = await _one_row(dl_pool, ids[0])
    second = await _one_row(dl_pool, ids[1])
    await _one_row(dl_pool, str(good.event_id))
    assert first.event_text == "\\xffthis is not an envelope"
    assert second.event_text == wrong_shape.decode()
    for row in (first, second):
        assert row.error_type == "MalformedEnvelope"
        assert row.subject == "serenade.deadletter.mystery"
        assert row.service == "mystery"
        assert row.correlation_id == "corr-9"
    assert "original_subject" in second.error
