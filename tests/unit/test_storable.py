"""What a text or jsonb column can hold: one rule for the generator's envelopes and the
dead-letter service's rows."""

from __future__ import annotations

import orjson
import pytest

from services.deadletter.records import record_from_envelope
from services.generator.parsing import Poison, parse_request
from shared.storable import decode_original, json_or_text, storable_text


@pytest.mark.parametrize(
    ("data", "kept"),
    [
        (b'{"a": [1, 2]}', {"a": [1, 2]}),
        (b'{"n": "a\\u0000b"}', {"n": "a\\u0000b"}),
        # jsonb cannot hold these exactly (orjson would read the integer as a float): text.
        (b'{"n": 18446744073709551616}', '{"n": 18446744073709551616}'),
        (b'{"s": "\\ud800"}', '{"s": "\\ud800"}'),
        (b"NaN", "NaN"),
        (b"null", "null"),
        (b"\x00\xffraw", "\\u0000\\xffraw"),
    ],
)
def test_a_message_is_kept_as_json_only_when_jsonb_holds_it_exactly(
    data: bytes, kept: object
) -> None:
    assert json_or_text(data) == kept
    value, text = decode_original(data)
    assert (value if text is None else text) == kept


def test_text_with_nul_and_lone_surrogates_is_written_out() -> None:
    assert storable_text("a\x00b\ud800c") == "a\\u0000b\\ud800c"
    assert storable_text("plain") == "plain"


def test_the_generator_and_the_deadletter_service_keep_an_original_alike() -> None:
    data = b'{"type": "variants.requested", "big": 18446744073709551616}'
    poison = parse_request(data)
    assert isinstance(poison, Poison)
    envelope = (
        b'{"service": "generator", "original_subject": "s", "error_type": "E", "error": "e",'
        b' "attempts": 1, "original_event": ' + orjson.dumps(poison.original) + b"}"
    )
    record = record_from_envelope(
        envelope, subject="serenade.deadletter.generator", headers=None, stream_seq=1
    )
    assert record.event_text == data.decode()
    assert record.event_data is None
