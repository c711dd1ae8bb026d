"""Building failed_jobs rows from envelopes and advisories: nothing is dropped, everything fits
PostgreSQL."""

from __future__ import annotations

import uuid

import orjson
import pytest

from services.deadletter.advisories import AdvisoryError, parse_advisory
from services.deadletter.records import (
    Reason,
    record_from_advisory,
    record_from_envelope,
    record_from_malformed_advisory,
)
from shared.enums import RequestReason
from shared.events import DeadLettered, VariantRequested
from shared.storable import decode_original

SUBJECT = "serenade.deadletter.generator"


def _envelope(original: object, **fields: object) -> dict[str, object]:
    body: dict[str, object] = {
        "event_id": str(uuid.uuid4()),
        "type": "deadletter.generator",
        "occurred_at": "2026-01-01T00:00:00Z",
        "original_subject": "serenade.variants.requested",
        "original_event": original,
        "error_type": "ProviderError",
        "error": "boom",
        "attempts": 3,
        "failed_at": "2026-01-01T00:00:00Z",
        "service": "generator",
    }
    body.update(fields)
    return body


def test_envelope_keeps_the_original_event_and_its_variant() -> None:
    original = VariantRequested(
        variant_id=uuid.uuid4(),
        order_id=uuid.uuid4(),
        variant_number=2,
        reason=RequestReason.CREATED,
        correlation_id="from-event",
    ).model_dump(mode="json")
    body = _envelope(original)

    record = record_from_envelope(
        orjson.dumps(body), subject=SUBJECT, headers={"Nats-Msg-Id": "header-id"}, stream_seq=7
    )

    assert record.event_data == original
    assert record.event_text is None
    assert record.message_id == body["event_id"]
    assert record.variant_id == uuid.UUID(str(original["variant_id"]))
    assert record.correlation_id == "from-event"
    assert (record.subject, record.service, record.attempts) == (
        "serenade.variants.requested",
        "generator",
        3,
    )
    assert record.reason == Reason.ENVELOPE


def test_envelope_validates_with_the_contract_model() -> None:
    body = _envelope({"a": 1})
    DeadLettered.model_validate(body)  # the fixture itself is a valid envelope
    assert (
        record_from_envelope(
            orjson.dumps(body), subject=SUBJECT, headers=None, stream_seq=None
        ).error_type
        == "ProviderError"
    )


def test_message_id_falls_back_to_the_header_then_the_stream_sequence() -> None:
    body = _envelope({"a": 1})
    del body["event_id"]
    data = orjson.dumps(body)

    assert (
        record_from_envelope(data, subject=SUBJECT, headers={"Nats-Msg-Id": "h"}, stream_seq=9)
    ).message_id == "h"
    assert (
        record_from_envelope(data, subject=SUBJECT, headers=None, stream_seq=9)
    ).message_id == "SERENADE:9"


@pytest.mark.parametrize(
    ("original", "data", "text"),
    [
        ("plain words", None, "plain words"),
        ('{"half": ', None, '{"half": '),
        ("null", None, "null"),
        (None, None, "null"),
        ("NaN", None, "NaN"),
        ("123456789012345678901234567890", None, "123456789012345678901234567890"),
        ('"\\ud800"', None, '"\\ud800"'),
        ('{"as": "text"}', {"as": "text"}, None),
        ({"as": "json"}, {"as": "json"}, None),
        ([1, 2], [1, 2], None),
        ("nul\x00inside", None, "nul\\u0000inside"),
        ({"k\x00": ["\x00"]}, {"k\\u0000": ["\\u0000"]}, None),
    ],
)
def test_original_is_json_when_it_is_json_and_verbatim_text_otherwise(
    original: object, data: object, text: str | None
) -> None:
    record = record_from_envelope(
        orjson.dumps(_envelope(original)), subject=SUBJECT, headers=None, stream_seq=1
    )
    assert (record.event_data, record.event_text) == (data, text)


def test_variant_id_only_when_it_is_a_uuid() -> None:
    record = record_from_envelope(
        orjson.dumps(_envelope({"variant_id": "not-a-uuid"})),
        subject=SUBJECT,
        headers=None,
        stream_seq=1,
    )
    assert record.variant_id is None


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON list"),
        (orjson.dumps({"original_subject": "x"}), "invalid fields"),
        (orjson.dumps(_envelope({}, attempts=-1)), "attempts"),
    ],
)
def test_malformed_envelope_is_kept_whole(data: bytes, problem: str) -> None:
    record = record_from_envelope(
        data, subject=SUBJECT, headers={"X-Correlation-Id": "c"}, stream_seq=3
    )
    assert record.error_type == "MalformedEnvelope"
    assert problem in record.error
    assert record.event_data is None
    assert record.event_text == data.decode("utf-8", errors="backslashreplace")
    assert (record.subject, record.service, record.message_id) == (
        SUBJECT,
        "generator",
        "SERENADE:3",
    )
    assert record.correlation_id == "c"
    assert record.reason == Reason.MALFORMED_ENVELOPE


def test_decode_original_of_bytes() -> None:
    assert decode_original(b'{"a": 1}') == ({"a": 1}, None)
    assert decode_original(b"\xffraw") == (None, "\\xffraw")
    assert decode_original(b"") == (None, "")


ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.SERENADE.generator"


def _advisory_body(**fields: object) -> bytes:
    body = {"stream": "SERENADE", "consumer": "generator", "stream_seq": 12, "deliveries": 5}
    return orjson.dumps(body | fields)


def test_advisory_record_keeps_the_original_and_names_the_consumer() -> None:
    advisory = parse_advisory(_advisory_body(), ADVISORY)
    variant_id = uuid.uuid4()
    original = orjson.dumps({"variant_id": str(variant_id), "correlation_id": "c1"})

    record = record_from_advisory(
        advisory,
        original_subject="serenade.variants.requested",
        original_data=original,
        original_headers={"X-Correlation-Id": "c2"},
    )

    assert record.error_type == "MaxDeliveriesExceeded"
    assert record.message_id == "advisory:SERENADE:12:generator"
    assert (record.service, record.attempts, record.variant_id) == ("generator", 5, variant_id)
    assert record.correlation_id == "c2"
    assert record.event_data == orjson.loads(original)
    assert "after 5 deliveries" in record.error


def test_terminated_advisory_and_a_vanished_original() -> None:
    subject = ADVISORY.replace("MAX_DELIVERIES", "MSG_TERMINATED")
    advisory = parse_advisory(_advisory_body(reason="poison"), subject)

    record = record_from_advisory(
        advisory, original_subject=None, original_data=None, original_headers=None
    )

    assert record.error_type == "MessageTerminated"
    assert record.error.endswith("no longer in stream SERENADE")
    assert ": poison" in record.error
    assert record.subject == subject
    assert record.event_data == orjson.loads(_advisory_body(reason="poison"))
    assert record.variant_id is None


@pytest.mark.parametrize(
    ("data", "subject"),
    [
        (_advisory_body(), "$JS.EVENT.ADVISORY.CONSUMER.CREATED.SERENADE.generator"),
        (b"{", ADVISORY),
        (b"[]", ADVISORY),
        (_advisory_body(stream_seq=None), ADVISORY),
        (_advisory_body(deliveries="3"), ADVISORY),
    ],
)
def test_unreadable_advisories_are_refused_by_the_parser(data: bytes, subject: str) -> None:
    with pytest.raises(AdvisoryError):
        parse_advisory(data, subject)


def test_unreadable_advisory_is_still_a_row() -> None:
    record = record_from_malformed_advisory(b"{\x00", subject=ADVISORY, problem="x", stream_seq=4)
    assert (record.event_text, record.message_id) == ("{\\u0000", "advisory:unreadable:4")
    assert record.error_type == "MalformedAdvisory"
