"""JetStream advisories about messages a consumer of ``SERENADE`` gave up on.

The server announces them as core NATS messages, which nobody may be listening to at that
moment; the stream ``SERENADE_ADVISORIES`` captures them so that they wait, durably, until the
dead-letter service reads them. Only the two advisories that mean "a message was given up" are
captured: capturing every consumer advisory would also capture the NAKs of our own consumer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from services.deadletter.records import Reason
from shared.events import STREAM_NAME

__all__ = [
    "ADVISORY_PATTERN",
    "ADVISORY_STREAM",
    "ADVISORY_SUBJECTS",
    "Advisory",
    "AdvisoryError",
    "advisory_stream_config",
    "parse_advisory",
]

ADVISORY_STREAM: Final = "SERENADE_ADVISORIES"
_PREFIX: Final = "$JS.EVENT.ADVISORY.CONSUMER"
_KINDS: Final = {"MAX_DELIVERIES": Reason.MAX_DELIVERIES, "MSG_TERMINATED": Reason.TERMINATED}
ADVISORY_SUBJECTS: Final = tuple(f"{_PREFIX}.{token}.{STREAM_NAME}.*" for token in _KINDS)
# What the advisory consumer reads, as one pattern (the stream holds only ADVISORY_SUBJECTS).
ADVISORY_PATTERN: Final = f"{_PREFIX}.*.{STREAM_NAME}.*"
_WEEK: Final = 7 * 24 * 3600.0


def advisory_stream_config() -> StreamConfig:
    """On disk, kept as long as the originals they point at (the SERENADE stream's max age)."""
    return StreamConfig(
        name=ADVISORY_STREAM,
        description="JetStream advisories of messages given up by consumers of SERENADE",
        subjects=list(ADVISORY_SUBJECTS),
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        max_age=_WEEK,
        duplicate_window=120.0,
    )


class AdvisoryError(ValueError):
    """The advisory cannot be read."""


@dataclass(frozen=True, slots=True)
class Advisory:
    """``kind`` is ``Reason.MAX_DELIVERIES`` or ``Reason.TERMINATED``."""

    kind: str
    subject: str
    stream: str
    consumer: str
    stream_seq: int
    deliveries: int
    reason: str | None
    raw: bytes

    @property
    def message_id(self) -> str:
        """Stable for the message and the consumer that gave it up: a redelivered advisory
        finds its row taken."""
        return f"advisory:{self.stream}:{self.stream_seq}:{self.consumer}"


def parse_advisory(data: bytes, subject: str) -> Advisory:
    """``$JS.EVENT.ADVISORY.CONSUMER.<KIND>.<stream>.<consumer>`` and its JSON body."""
    tokens = subject.split(".")
    if len(tokens) != 7 or ".".join(tokens[:4]) != _PREFIX or tokens[4] not in _KINDS:
        raise AdvisoryError(f"not a max-deliveries or terminated advisory subject: {subject}")
    try:
        body = json.loads(data)
    except ValueError as error:
        raise AdvisoryError(f"not JSON: {error}") from error
    if not isinstance(body, dict):
        raise AdvisoryError("not a JSON object")
    stream_seq = body.get("stream_seq")
    deliveries = body.get("deliveries", 0)
    if not isinstance(stream_seq, int) or stream_seq < 1:
        raise AdvisoryError(f"no stream sequence in it: {stream_seq!r}")
    if not isinstance(deliveries, int):
        raise AdvisoryError(f"deliveries is not a number: {deliveries!r}")
    stream = body.get("stream") or tokens[5]
    consumer = body.get("consumer") or tokens[6]
    reason = body.get("reason")
    return Advisory(
        kind=_KINDS[tokens[4]],
        subject=subject,
        stream=str(stream),
        consumer=str(consumer),
        stream_seq=stream_seq,
        deliveries=deliveries,
        reason=str(reason) if reason else None,
        raw=data,
    )
