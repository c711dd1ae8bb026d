"""Live order status for Server-Sent Events: one NATS feed per process, fanned out in-process.

``LiveEvents`` is what the app holds for the life of its lifespan: the hub that streams
subscribe to and the NATS feed that fills it. No stream polls the database.
"""

import uuid
from dataclasses import dataclass

from services.api.common.database import Database
from services.api.live.feed import FEED_SUBJECTS, NatsFeed
from services.api.live.hub import DEFAULT_QUEUE_SIZE, EventHub, Signal, Subscription
from services.api.live.stream import OrderStream, Snapshot, open_order_stream
from shared.db import Caller

__all__ = [
    "FEED_SUBJECTS",
    "EventHub",
    "LiveEvents",
    "NatsFeed",
    "OrderStream",
    "Signal",
    "Snapshot",
    "StreamTuning",
    "Subscription",
]


@dataclass(frozen=True, slots=True)
class StreamTuning:
    """How event streams behave; tests shorten the heartbeat."""

    # Seconds of silence after which a stream sends a `: keep-alive` comment, so proxies and
    # load balancers keep the connection open.
    heartbeat_seconds: float = 15.0
    # Events one stream may have waiting before it is dropped as too slow (it then reconnects).
    queue_size: int = DEFAULT_QUEUE_SIZE


class LiveEvents:
    """The hub and its feed, started and stopped by the app's lifespan."""

    def __init__(self, servers: list[str], tuning: StreamTuning) -> None:
        self.tuning = tuning
        self.hub = EventHub(queue_size=tuning.queue_size)
        self.feed = NatsFeed(servers, self.hub)

    async def start(self) -> None:
        await self.feed.start()

    async def stop(self) -> None:
        """End every open stream, then leave NATS."""
        self.hub.close()
        await self.feed.stop()

    async def open(self, db: Database, caller: Caller, order_id: uuid.UUID) -> OrderStream:
        """A stream of ``order_id`` for ``caller`` (404 when they cannot see it)."""
        return await open_order_stream(
            db, self.hub, caller, order_id, heartbeat=self.tuning.heartbeat_seconds
        )
