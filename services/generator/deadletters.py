"""Dead-letter envelopes of the generator (``serenade.deadletter.generator``), written through the
outbox once per failed message.

An envelope's event id, hence its ``Nats-Msg-Id``, is derived from the message it gives up on, so
a redelivery of that message (after a crash between commit and ack) never makes a second one: the
outbox already holds the id, and JetStream and the dead-letter table would drop it anyway.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from pydantic import Field

from shared.events import DeadLettered, deadletter_subject
from shared.outbox import enqueue

if TYPE_CHECKING:
    import asyncpg

    from .delivery import Delivery, Position

__all__ = [
    "SERVICE",
    "GeneratorDeadLettered",
    "envelope_for",
    "envelope_id",
    "original_event",
    "write_once",
]

SERVICE = "generator"
# Namespace of the generator's derived event ids (uuid5), fixed forever.
_NAMESPACE = uuid.UUID("6f1d2c1e-8a57-4f37-9a34-7d3b1e0c9b52")


class GeneratorDeadLettered(DeadLettered):
    """A variant request the generator gave up on: the original event in full, and why."""

    subject: ClassVar[str] = deadletter_subject(SERVICE)
    type: str = Field(default=f"deadletter.{SERVICE}", description="`deadletter.generator`.")
    service: str = Field(default=SERVICE, description="The service that gave up: `generator`.")


def original_event(data: bytes) -> Any:
    """The original as JSON when it parses, else its raw text (bytes that are not UTF-8 are
    kept as escapes, so nothing is lost)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return data.decode("utf-8", errors="backslashreplace")


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
    ``attempts`` defaults to the deliveries made."""
    position = delivery.position
    if attempts is None:
        attempts = position.delivered if position else 1
    return GeneratorDeadLettered(
        event_id=envelope_id(event_id=event_id, position=position),
        original_subject=delivery.subject,
        original_event=original,
        error_type=error_type,
        error=error,
        attempts=attempts,
        correlation_id=correlation_id,
    )


async def write_once(conn: asyncpg.Connection, envelope: GeneratorDeadLettered) -> bool:
    """Enqueue ``envelope`` unless the outbox already holds its id; True when written."""
    exists = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM outbox WHERE event_id = $1)", envelope.event_id
    )
    if exists:
        return False
    await enqueue(conn, envelope)
    return True
