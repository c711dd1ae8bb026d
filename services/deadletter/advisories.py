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

from services.deadletter.reasons import Reason
from shared.events import STREAM_NAME
from shared.stream import ADVISORY_PREFIX, ADVISORY_STREAM, ADVISORY_SUBJECTS

__all__ = [
    "ADVISORY_PATTERN",
    "ADVISORY_STREAM",
    "ADVISORY_SUBJECTS",
    "Advisory",
    "AdvisoryError",
    "parse_advisory",
]

_KINDS: Final = {"MAX_DELIVERIES": Reason.MAX_DELIVERIES, "MSG_TERMINATED": Reason.TERMINATED}
# What the advisory consumer reads, as one pattern (the stream holds only ADVISORY_SUBJECTS).
ADVISORY_PATTERN: Final = f"{ADVISORY_PREFIX}.*.{STREAM_NAME}.*"


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
    if len(tokens) != 7 or ".".join(tokens[:4]) != ADVISORY_PREFIX or tokens[4] not in _KINDS:
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
