"""The dead-letter service's durable consumers, as the code wants them; ``ensure_consumers``
brings the server's copies up to date at start (``shared.stream.ensure_consumer``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from shared.events import DEADLETTER_SUBJECTS, STREAM_NAME
from shared.stream import ADVISORY_STREAM, ensure_consumer

if TYPE_CHECKING:
    from nats.js import JetStreamContext

__all__ = [
    "ADVISORY_DURABLE",
    "ENVELOPE_DURABLE",
    "advisory_consumer_config",
    "ensure_consumers",
    "envelope_consumer_config",
    "retry_delay",
]

ENVELOPE_DURABLE: Final = "deadletter"
ADVISORY_DURABLE: Final = "deadletter-advisories"
# A handler that cannot store (PostgreSQL down) NAKs with a delay long before this; the ack
# wait only matters for a process that dies mid-message.
ACK_WAIT_SECONDS: Final = 60.0
# Enough in flight to keep up, few enough that a restart redelivers little.
MAX_ACK_PENDING: Final = 256


def envelope_consumer_config() -> ConsumerConfig:
    """Every envelope, from the start of the stream; never given up (max_deliver -1): while
    PostgreSQL is down envelopes are NAKed and wait in the stream, however long that takes."""
    return ConsumerConfig(
        durable_name=ENVELOPE_DURABLE,
        name=ENVELOPE_DURABLE,
        description="dead-letter service: stores every envelope in failed_jobs",
        filter_subject=DEADLETTER_SUBJECTS,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT_SECONDS,
        max_deliver=-1,
        max_ack_pending=MAX_ACK_PENDING,
    )


def advisory_consumer_config() -> ConsumerConfig:
    """Every captured advisory, never given up, like the envelopes."""
    return ConsumerConfig(
        durable_name=ADVISORY_DURABLE,
        name=ADVISORY_DURABLE,
        description="dead-letter service: stores messages given up by consumers of SERENADE",
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT_SECONDS,
        max_deliver=-1,
        max_ack_pending=MAX_ACK_PENDING,
    )


async def ensure_consumers(js: JetStreamContext) -> None:
    """Both durables as configured above: created, updated, or recreated when the server
    refuses the update (every envelope and advisory is stored once by its message id, so a
    redelivery after the acknowledged floor is harmless)."""
    await ensure_consumer(js, STREAM_NAME, envelope_consumer_config())
    await ensure_consumer(js, ADVISORY_STREAM, advisory_consumer_config())


_FIRST_RETRY_SECONDS: Final = 0.5
_MAX_RETRY_SECONDS: Final = 5.0


def retry_delay(deliveries: int) -> float:
    """Seconds before a message that could not be stored comes back: doubling from half a
    second, at most five, so that stored-again follows PostgreSQL's return closely."""
    exponent = min(max(deliveries, 1) - 1, 16)
    return min(_FIRST_RETRY_SECONDS * 2.0**exponent, _MAX_RETRY_SECONDS)
