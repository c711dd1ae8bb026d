"""Dead-letter envelopes of the generator (``serenade.deadletter.generator``), written through the
outbox once per failed message.

An envelope's event id, hence its ``Nats-Msg-Id``, is derived from the message it gives up on, so
a redelivery of that message (after a crash between commit and ack) never makes a second one: the
outbox already holds the id, and JetStream and the dead-letter table would drop it anyway.

Whatever a message holds, its envelope can be written and sent: every text and the original are
made storable by ``shared.storable`` (the rule the dead-letter service applies too), and a
message too large to travel inside an envelope (it may be as large as NATS allows, the envelope
must be smaller) is kept as its first characters and a note of where the stream holds it whole.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from shared.events import DeadLettered, deadletter_subject
from shared.outbox import enqueue
from shared.storable import storable_text, text_of

if TYPE_CHECKING:
    import asyncpg

    from .delivery import Delivery, Position

__all__ = [
    "MAX_ERROR_CHARS",
    "MAX_ORIGINAL_BYTES",
    "SERVICE",
    "GeneratorDeadLettered",
    "envelope_for",
    "envelope_id",
    "error_text",
    "write_once",
]

SERVICE = "generator"
# A message up to this size travels whole in its envelope; a larger one is cut.
MAX_ORIGINAL_BYTES = 64 * 1024
# What is kept of a larger one (bytes of its start), and of an error message (characters).
_KEPT_BYTES = 16 * 1024
MAX_ERROR_CHARS = 2000
# Namespace of the generator's derived event ids (uuid5), fixed forever.
_NAMESPACE = uuid.UUID("6f1d2c1e-8a57-4f37-9a34-7d3b1e0c9b52")


class GeneratorDeadLettered(DeadLettered):
    """A variant request the generator gave up on: the original event in full, and why."""

    subject: ClassVar[str] = deadletter_subject(SERVICE)
    type: str = Field(default=f"deadletter.{SERVICE}", description="`deadletter.generator`.")
    service: str = Field(default=SERVICE, description="The service that gave up: `generator`.")


def error_text(error: BaseException) -> str:
    """An exception as the error a variant and its dead letter keep: its message (or its type's
    name), at most ``MAX_ERROR_CHARS`` characters, NUL written out."""
    return storable_text((str(error) or type(error).__name__)[:MAX_ERROR_CHARS])


def _cut(data: bytes, position: Position | None) -> str:
    """The start of a message too large for an envelope, and where it is kept whole."""
    head = text_of(data[:_KEPT_BYTES])
    where = (
        f"; whole in stream {position.stream} at sequence {position.sequence}" if position else ""
    )
    return f"{head}... [cut: {len(data)} bytes in all{where}]"


def envelope_id(*, event_id: uuid.UUID | None, position: Position | None) -> uuid.UUID:
    """The same id for every delivery of one message.

    A valid event is known by its own id. A message that is not one is known by its place in
    the stream: sequence and store time (the time tells a recreated stream's reused sequence
    numbers apart). A message with neither gets a fresh id.
    """
    if event_id is not None:
        return uuid.uuid5(_NAMESPACE, f"{SERVICE}/event/{event_id}")
    if position is not None:
        stored = position.stored_at.isoformat() if position.stored_at else ""
        return uuid.uuid5(_NAMESPACE, f"{SERVICE}/{position.stream}/{position.sequence}/{stored}")
    return uuid.uuid4()


def envelope_for(
    delivery: Delivery,
    *,
    event_id: uuid.UUID | None,
    original: Any,
    error_type: str,
    error: str,
    correlation_id: str | None,
    attempts: int | None = None,
) -> GeneratorDeadLettered:
    """The envelope giving up on ``delivery`` (the event ``event_id``, when it was one).
    ``attempts`` defaults to the deliveries made. A message larger than ``MAX_ORIGINAL_BYTES``
    travels as its start (``original`` is then not used). ``original`` must be storable already
    (``shared.storable.json_or_text``); every other text is made so here."""
    position = delivery.position
    if attempts is None:
        attempts = position.delivered if position else 1
    if len(delivery.data) > MAX_ORIGINAL_BYTES:
        original = _cut(delivery.data, position)
    return GeneratorDeadLettered(
        event_id=envelope_id(event_id=event_id, position=position),
        original_subject=storable_text(delivery.subject),
        original_event=original,
        error_type=storable_text(error_type),
        error=storable_text(error[:MAX_ERROR_CHARS]),
        attempts=attempts,
        correlation_id=None if correlation_id is None else storable_text(correlation_id),
    )


async def write_once(conn: asyncpg.Connection, envelope: GeneratorDeadLettered) -> bool:
    """Enqueue ``envelope`` unless the outbox already holds its id; True when written. (What
    it finds was written by an earlier transaction, a delivery before this one: a unit's own
    outbox rows are written by its commit, and one transaction writes one envelope.)"""
    exists = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM outbox WHERE event_id = $1)", envelope.event_id
    )
    if exists:
        return False
    await enqueue(conn, envelope)
    return True
