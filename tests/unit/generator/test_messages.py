"""Parsing requests and naming dead letters: no servers needed."""

from __future__ import annotations

import datetime as dt
import uuid

import orjson

from services.generator.deadletters import GeneratorDeadLettered, envelope_id
from services.generator.delivery import Position
from services.generator.parsing import Poison, parse_request
from shared.events import VariantRequested
from shared.storable import json_or_text

_STORED = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)


def test_a_valid_request_parses_to_the_event() -> None:
    event = VariantRequested(
        variant_id=uuid.uuid4(), order_id=uuid.uuid4(), variant_number=4, reason="upsell"
    )
    assert parse_request(event.to_json()) == event


def test_bytes_that_are_not_json_are_poison_kept_as_text() -> None:
    poison = parse_request(b"\xff\xfehello")
    assert isinstance(poison, Poison)
    assert poison.error_type == "InvalidJSON"
    assert poison.original == "\\xff\\xfehello"


def test_json_of_the_wrong_shape_is_poison_kept_as_json_naming_the_fields() -> None:
    payload = {"type": "variants.requested", "variant_id": "nope", "extra": 1}
    poison = parse_request(orjson.dumps(payload))
    assert isinstance(poison, Poison)
    assert poison.error_type == "InvalidEvent"
    assert poison.original == payload
    assert "variant_id" in poison.error
    assert "order_id" in poison.error
    assert "extra" in poison.error


def test_the_original_event_is_json_when_it_parses_and_text_otherwise() -> None:
    assert json_or_text(b'{"a": [1, 2]}') == {"a": [1, 2]}
    assert json_or_text(b"[1, 2]") == [1, 2]
    assert json_or_text(b"plain words") == "plain words"


def test_every_delivery_of_one_message_names_the_same_envelope() -> None:
    first = envelope_id(event_id=None, position=Position("SERENADE", 9, _STORED, 1))
    again = envelope_id(event_id=None, position=Position("SERENADE", 9, _STORED, 5))
    other = envelope_id(event_id=None, position=Position("SERENADE", 10, _STORED, 1))
    reused = envelope_id(
        event_id=None, position=Position("SERENADE", 9, _STORED + dt.timedelta(days=1), 1)
    )

    assert first == again
    assert len({first, other, reused}) == 3


def test_a_valid_event_names_its_envelope_by_its_own_id() -> None:
    event_id = uuid.uuid4()
    by_event = envelope_id(event_id=event_id, position=Position("SERENADE", 1, _STORED, 1))
    assert by_event == envelope_id(event_id=event_id, position=None)
    assert by_event != event_id
    assert envelope_id(event_id=None, position=None) != envelope_id(event_id=None, position=None)


def test_the_envelope_goes_to_the_generator_dead_letter_subject() -> None:
    envelope = GeneratorDeadLettered(
        original_subject="serenade.variants.requested",
        original_event="raw",
        error_type="InvalidJSON",
        error="not JSON",
        attempts=1,
        correlation_id="req-1",
    )
    body = orjson.loads(envelope.to_json())

    assert envelope.subject == "serenade.deadletter.generator"
    assert body["type"] == "deadletter.generator"
    assert body["service"] == "generator"
    assert set(body) >= {
        "event_id", "occurred_at", "correlation_id", "original_subject", "original_event",
        "error_type", "error", "attempts", "failed_at", "service",
    }  # fmt: skip
    assert envelope.headers() == {
        "Nats-Msg-Id": str(envelope.event_id),
        "X-Correlation-Id": "req-1",
    }
