"""Hostile messages on serenade.variants.requested (drill 6): each is dead-lettered at its first
delivery with an envelope the outbox takes and NATS accepts, never retried until the server
gives up, and never left to stop the outbox relay."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from services.generator.deadletters import MAX_ORIGINAL_BYTES
from services.generator.delivery import Position
from services.generator.pipeline import Outcome, Pipeline, Policy, process_request
from services.generator.providers import InstantProvider
from shared.db import Caller, transaction
from shared.events import STREAM_NAME, SUBJECT_VARIANT_REQUESTED, VariantRequested
from shared.outbox import MAX_EVENT_BYTES
from shared.storage import storage_from_url

from .support import seed_order

if TYPE_CHECKING:
    from .conftest import GeneratorEnv

_STORED = dt.datetime(2026, 5, 6, 7, 8, 9, tzinfo=dt.UTC)


@dataclass
class _Delivery:
    data: bytes
    position: Position | None = field(default_factory=lambda: Position(STREAM_NAME, 42, _STORED, 1))
    subject: str = SUBJECT_VARIANT_REQUESTED
    correlation_id: str | None = None
    settled: list[str] = field(default_factory=list)

    async def ack(self) -> None:
        self.settled.append("ack")

    async def nak(self, delay: float | None = None) -> None:
        self.settled.append(f"nak {delay}")

    async def in_progress(self) -> None:
        return None


def _pipeline(env: GeneratorEnv) -> Pipeline:
    return Pipeline(
        env.pool,
        storage_from_url(env.settings.resolved_storage_url),
        InstantProvider(),
        Policy.from_settings(env.settings),
        announce=lambda: None,
    )


async def _letters(env: GeneratorEnv, marker: str) -> list[dict[str, Any]]:
    async with transaction(env.pool, Caller.service()) as conn:
        rows = await conn.fetch(
            "SELECT payload FROM outbox WHERE subject = 'serenade.deadletter.generator'"
            " AND strpos(payload::text, $1) > 0",
            marker,
        )
    return [row["payload"] for row in rows]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    return False


async def _dead_lettered_at_once(env: GeneratorEnv, data: bytes, marker: str) -> dict[str, Any]:
    delivery = _Delivery(data)
    report = await process_request(delivery, _pipeline(env), abandon=asyncio.Event())
    assert report.outcome is Outcome.DEAD_LETTERED
    assert delivery.settled == ["ack"]  # settled at its first delivery, not retried
    [letter] = await _letters(env, marker)
    assert not _has_nul(letter)
    assert len(orjson.dumps(letter)) < MAX_EVENT_BYTES
    return letter


async def test_json_with_nul_characters_is_dead_lettered_with_them_escaped(
    generator_env: GeneratorEnv,
) -> None:
    data = orjson.dumps({"variant_id": "\x00", "note": "marker-json-nul\x00"})

    letter = await _dead_lettered_at_once(generator_env, data, "marker-json-nul")

    assert letter["error_type"] == "InvalidEvent"
    assert letter["original_event"]["note"] == "marker-json-nul\\u0000"


async def test_bytes_with_nul_that_are_not_json_are_dead_lettered_as_escaped_text(
    generator_env: GeneratorEnv,
) -> None:
    letter = await _dead_lettered_at_once(
        generator_env, b"\x00\xffmarker-bytes-nul", "marker-bytes-nul"
    )

    assert letter["error_type"] == "InvalidJSON"
    assert letter["original_event"] == "\\u0000\\xffmarker-bytes-nul"


async def test_a_message_too_large_for_an_envelope_is_kept_as_its_start_and_its_place(
    generator_env: GeneratorEnv,
) -> None:
    # Not UTF-8: kept as escapes of four characters a byte, the whole would be 4 MB.
    data = b"marker-too-large" + b"\xff" * 1_000_000

    letter = await _dead_lettered_at_once(generator_env, data, "marker-too-large")

    original = letter["original_event"]
    assert original.startswith("marker-too-large\\xff")
    assert original.endswith(
        f"[cut: {len(data)} bytes in all; whole in stream SERENADE at sequence 42]"
    )
    assert len(data) > MAX_ORIGINAL_BYTES


async def test_a_key_as_long_as_the_message_does_not_swell_the_error(
    generator_env: GeneratorEnv,
) -> None:
    data = orjson.dumps({"marker-long-key" + "k" * 900_000: 1})

    letter = await _dead_lettered_at_once(generator_env, data, "marker-long-key")

    assert len(letter["error"]) <= 2000


async def test_a_request_whose_correlation_id_holds_nul_is_generated_with_it_escaped(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    order = await seed_order(env.pool, variants=1)
    request = VariantRequested(
        variant_id=order.variant_ids[0], order_id=order.order_id, variant_number=1,
        reason="created", correlation_id="trace\x00" + "x" * 500,
    )  # fmt: skip
    delivery = _Delivery(request.to_json())

    report = await process_request(delivery, _pipeline(env), abandon=asyncio.Event())

    assert report.outcome is Outcome.COMPLETE
    assert delivery.settled == ["ack"]
    async with transaction(env.pool, Caller.service()) as conn:
        ids = await conn.fetch(
            "SELECT payload ->> 'correlation_id' AS id FROM outbox"
            " WHERE payload ->> 'variant_id' = $1",
            str(order.variant_ids[0]),
        )
    assert {row["id"] for row in ids} == {("trace\\u0000" + "x" * 500)[:128]}


async def test_an_unknown_variant_with_a_nul_in_its_correlation_id_is_dead_lettered_at_once(
    generator_env: GeneratorEnv,
) -> None:
    request = VariantRequested(
        variant_id=uuid.uuid4(), order_id=uuid.uuid4(), variant_number=1, reason="created",
        correlation_id="marker-unknown\x00",
    )  # fmt: skip

    letter = await _dead_lettered_at_once(generator_env, request.to_json(), "marker-unknown")

    assert letter["error_type"] == "UnknownVariant"
    assert letter["correlation_id"] == "marker-unknown\\u0000"
