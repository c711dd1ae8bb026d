"""What one failure becomes: a ``FailureRecord``, built from an envelope or an advisory.

Pure functions, no I/O: each input, however malformed, yields a record, so that nothing is ever
dropped; every text in it is one PostgreSQL can hold (``shared.storable``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from services.deadletter.reasons import Reason
from shared.events import CORRELATION_HEADER, STREAM_NAME, DeadLettered
from shared.storable import NOT_JSON, decode_original, parse_json, storable_text, text_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from services.deadletter.advisories import Advisory

__all__ = [
    "FailureRecord",
    "Reason",
    "record_from_advisory",
    "record_from_envelope",
    "record_from_malformed_advisory",
]

_MSG_ID_HEADER: Final = "Nats-Msg-Id"


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """One failed_jobs row to insert. Exactly one of ``event_data`` / ``event_text`` is set."""

    subject: str
    service: str
    event_data: Any
    event_text: str | None
    error_type: str
    error: str
    attempts: int
    message_id: str
    correlation_id: str | None
    variant_id: uuid.UUID | None
    reason: str


# --- fields read from an event ----------------------------------------------------------------
def _uuid_or_none(value: Any) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _str_or_none(value: Any) -> str | None:
    return storable_text(value) if isinstance(value, str) and value else None


def _event_field(event_data: Any, name: str) -> Any:
    return event_data.get(name) if isinstance(event_data, dict) else None


def _service_of(subject: str) -> str:
    """``serenade.deadletter.<service>``: the last token names the service."""
    return storable_text(subject.rsplit(".", 1)[-1] or "unknown")


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    return _str_or_none((headers or {}).get(name))


# --- envelopes --------------------------------------------------------------------------------
def _stream_message_id(stream_seq: int | None) -> str:
    return f"{STREAM_NAME}:{stream_seq}" if stream_seq is not None else f"unknown:{uuid.uuid4()}"


def record_from_envelope(
    data: bytes,
    *,
    subject: str,
    headers: Mapping[str, str] | None,
    stream_seq: int | None,
) -> FailureRecord:
    """The row for one message on ``serenade.deadletter.<service>``.

    Its message id is the envelope's ``event_id`` (what makes a redelivery find its row taken),
    else its ``Nats-Msg-Id``, else its stream sequence. A malformed envelope is kept whole as
    text, with ``MalformedEnvelope`` saying what is wrong with it.
    """
    fallback_id = _header(headers, _MSG_ID_HEADER) or _stream_message_id(stream_seq)
    header_correlation = _header(headers, CORRELATION_HEADER)
    parsed = _parse_envelope(data)
    if isinstance(parsed, str):
        subject_text = storable_text(subject)
        return FailureRecord(
            subject=subject_text,
            service=_service_of(subject),
            event_data=None,
            event_text=text_of(data),
            error_type="MalformedEnvelope",
            error=f"the message on {subject_text} is not a dead-letter envelope: {parsed}",
            attempts=0,
            message_id=fallback_id,
            correlation_id=header_correlation,
            variant_id=None,
            reason=Reason.MALFORMED_ENVELOPE,
        )
    raw, envelope = parsed
    original = raw["original_event"]
    if isinstance(original, str):
        event_data, event_text = decode_original(original)
    elif original is None:
        event_data, event_text = None, "null"
    else:
        event_data, event_text = original, None
    return FailureRecord(
        subject=storable_text(envelope.original_subject),
        service=storable_text(envelope.service),
        event_data=event_data,
        event_text=event_text,
        error_type=storable_text(envelope.error_type),
        error=storable_text(envelope.error),
        attempts=envelope.attempts,
        message_id=str(envelope.event_id) if "event_id" in raw else fallback_id,
        correlation_id=_str_or_none(envelope.correlation_id)
        or header_correlation
        or _str_or_none(_event_field(event_data, "correlation_id")),
        variant_id=_uuid_or_none(_event_field(event_data, "variant_id")),
        reason=Reason.ENVELOPE,
    )


def _parse_envelope(data: bytes) -> tuple[dict[str, Any], DeadLettered] | str:
    """The envelope as parsed JSON and as the contract's model, or what is wrong with it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "it is not UTF-8 text"
    raw = parse_json(text)
    if raw is NOT_JSON:
        return "it is not JSON (or holds what PostgreSQL cannot store)"
    if not isinstance(raw, dict):
        return f"it is a JSON {type(raw).__name__}, not an object"
    try:
        envelope = DeadLettered.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'envelope'}: {problem['msg']}"
            for problem in error.errors(include_url=False)
        )
        return f"invalid fields ({problems})"
    return raw, envelope


# --- advisories -------------------------------------------------------------------------------
_ADVISORY_ERROR_TYPES: Final = {
    Reason.MAX_DELIVERIES: "MaxDeliveriesExceeded",
    Reason.TERMINATED: "MessageTerminated",
}


def _advisory_error(advisory: Advisory) -> str:
    where = f"consumer {advisory.consumer} of stream {advisory.stream}"
    if advisory.kind == Reason.MAX_DELIVERIES:
        return (
            f"{where} gave up on message {advisory.stream_seq} after {advisory.deliveries}"
            " deliveries; no handler reported an error (it died or timed out on every delivery)"
        )
    said = f": {advisory.reason}" if advisory.reason else ""
    return (
        f"{where} terminated message {advisory.stream_seq} after {advisory.deliveries}"
        f" deliveries{said}"
    )


def record_from_advisory(
    advisory: Advisory,
    *,
    original_subject: str | None,
    original_data: bytes | None,
    original_headers: Mapping[str, str] | None,
) -> FailureRecord:
    """The row for a message a consumer gave up on without any handler reporting it.

    ``original_subject`` is None when the message is no longer in the stream: the advisory
    itself is kept then, so that the failure is not lost.
    """
    error = storable_text(_advisory_error(advisory))
    if original_subject is None:
        event_data, event_text = decode_original(advisory.raw)
        subject = storable_text(advisory.subject)
        error += f"; the message is no longer in stream {storable_text(advisory.stream)}"
    else:
        event_data, event_text = decode_original(original_data or b"")
        subject = storable_text(original_subject)
    return FailureRecord(
        subject=subject,
        service=storable_text(advisory.consumer),
        event_data=event_data,
        event_text=event_text,
        error_type=_ADVISORY_ERROR_TYPES[advisory.kind],
        error=error,
        attempts=max(advisory.deliveries, 0),
        message_id=storable_text(advisory.message_id),
        correlation_id=_header(original_headers, CORRELATION_HEADER)
        or _str_or_none(_event_field(event_data, "correlation_id")),
        variant_id=_uuid_or_none(_event_field(event_data, "variant_id"))
        if original_subject is not None
        else None,
        reason=advisory.kind,
    )


def record_from_malformed_advisory(
    data: bytes, *, subject: str, problem: str, stream_seq: int | None
) -> FailureRecord:
    """An advisory we cannot read: kept whole, so that an operator can look."""
    return FailureRecord(
        subject=storable_text(subject),
        service="nats-server",
        event_data=None,
        event_text=text_of(data),
        error_type="MalformedAdvisory",
        error=f"unreadable JetStream advisory on {storable_text(subject)}: {problem}",
        attempts=0,
        message_id=f"advisory:unreadable:{stream_seq}"
        if stream_seq is not None
        else f"advisory:unreadable:{uuid.uuid4()}",
        correlation_id=None,
        variant_id=None,
        reason=Reason.MALFORMED_ADVISORY,
    )
