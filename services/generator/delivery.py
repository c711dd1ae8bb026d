"""One delivery of a JetStream message, as the pipeline sees it: its bytes, where it sits in the
stream, and the three ways to settle it. The seam that keeps the pipeline free of the NATS
client."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from shared.events import CORRELATION_HEADER

from .parsing import clean_correlation_id

if TYPE_CHECKING:
    from nats.aio.msg import Msg

__all__ = ["Delivery", "NatsDelivery", "Position"]


@dataclass(frozen=True, slots=True)
class Position:
    """Where a message sits in its stream; the same for every redelivery of it."""

    stream: str
    sequence: int
    stored_at: dt.datetime | None
    delivered: int


class Delivery(Protocol):
    """A message handed to this process, to be settled exactly once."""

    @property
    def subject(self) -> str: ...

    @property
    def data(self) -> bytes: ...

    @property
    def correlation_id(self) -> str | None: ...

    @property
    def position(self) -> Position | None: ...

    async def ack(self) -> None:
        """Done with it: never deliver it again."""
        ...

    async def nak(self, delay: float | None = None) -> None:
        """Deliver it again, after ``delay`` seconds (None: at once)."""
        ...

    async def in_progress(self) -> None:
        """Still working on it: restart its ack wait."""
        ...


class NatsDelivery:
    """A nats-py JetStream ``Msg`` as a ``Delivery``. Settled at most once: a second ack or
    nak (say, a requeue after the ack went out) is a no-op, as is a heartbeat after either."""

    __slots__ = ("_message", "_position", "_position_read", "_settled")

    def __init__(self, message: Msg) -> None:
        self._message = message
        self._settled = False
        # Read several times per delivery (slots, claim, log line): made once, when first asked.
        self._position: Position | None = None
        self._position_read = False

    @property
    def subject(self) -> str:
        return self._message.subject

    @property
    def data(self) -> bytes:
        return self._message.data

    @property
    def correlation_id(self) -> str | None:
        headers = self._message.headers or {}
        return clean_correlation_id(headers.get(CORRELATION_HEADER))

    @property
    def position(self) -> Position | None:
        if not self._position_read:
            self._position = self._read_position()
            self._position_read = True
        return self._position

    def _read_position(self) -> Position | None:
        message = self._message
        if not message.reply:
            return None  # not a JetStream delivery
        metadata = message.metadata
        return Position(
            stream=metadata.stream,
            sequence=metadata.sequence.stream,
            stored_at=metadata.timestamp,
            delivered=metadata.num_delivered,
        )

    async def ack(self) -> None:
        if not self._settled:
            await self._message.ack()
            self._settled = True

    async def nak(self, delay: float | None = None) -> None:
        if not self._settled:
            await self._message.nak(delay=delay)
            self._settled = True

    async def in_progress(self) -> None:
        if not self._settled:
            await self._message.in_progress()
