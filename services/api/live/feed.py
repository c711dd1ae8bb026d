"""The one NATS subscription per API process that feeds the event hub.

A core NATS subscription sees what the relays publish to JetStream. It is a single subscription
on ``serenade.*.*`` rather than one per subject: nats-py runs each subscription's callbacks in a
task of its own, so two subscriptions could hand an order's completion to the hub before the
status change that caused it. Messages missed while the connection was away (core NATS keeps
nothing) are made good by a resync: each stream reads its order's state again.
"""

import asyncio
import contextlib
import logging
import uuid

import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import SlowConsumerError
from pydantic import ValidationError

from services.api.live.hub import EventHub, LiveEvent
from shared.background import BackgroundTasks
from shared.events import (
    SUBJECT_ORDER_CANCELLED,
    SUBJECT_ORDER_COMPLETED,
    SUBJECT_VARIANT_STATUS,
    OrderCancelled,
    OrderCompleted,
    VariantStatusChanged,
)

__all__ = ["FEED_SUBJECTS", "NatsFeed"]

FEED_SUBJECTS = "serenade.*.*"
_MODELS: dict[str, type[LiveEvent]] = {
    SUBJECT_VARIANT_STATUS: VariantStatusChanged,
    SUBJECT_ORDER_COMPLETED: OrderCompleted,
    SUBJECT_ORDER_CANCELLED: OrderCancelled,
}
_log = logging.getLogger(__name__)


class NatsFeed:
    """Owns a NATS connection (reconnecting forever) whose subscription feeds ``hub``."""

    def __init__(self, servers: list[str], hub: EventHub) -> None:
        self._servers = servers
        self._hub = hub
        self._background = BackgroundTasks()
        self._nc: NatsClient | None = None
        self.subscribed = asyncio.Event()

    async def start(self) -> None:
        """Begin connecting in the background; returns at once."""
        self._background.start(self._run(), name="api-live-feed")

    async def _run(self) -> None:
        nc = NatsClient()
        self._nc = nc
        try:
            await nc.connect(
                self._servers,
                name="serenade-api-live",
                max_reconnect_attempts=-1,
                reconnect_time_wait=1,
                connect_timeout=2,
                error_cb=self._on_error,
                reconnected_cb=self._on_reconnected,
            )
            await nc.subscribe(FEED_SUBJECTS, cb=self._on_message)
            await nc.flush()
        except (NatsError, OSError, TimeoutError):
            _log.exception("the live event feed could not subscribe; streams get snapshots only")
            return
        self.subscribed.set()
        # Streams opened before the subscription took effect may have missed events.
        self._hub.resync_all()

    async def _on_message(self, msg: Msg) -> None:
        model = _MODELS.get(msg.subject)
        if model is None or not self._hub.watching:
            return
        try:
            order_id = uuid.UUID(str(orjson.loads(msg.data).get("order_id")))
            if not self._hub.watches(order_id):
                return
            event = model.model_validate_json(msg.data)
        except (ValueError, AttributeError, ValidationError) as error:
            _log.warning("ignoring a malformed %s message: %s", msg.subject, error)
            return
        self._hub.publish(event)

    async def _on_error(self, error: Exception) -> None:
        if isinstance(error, SlowConsumerError):
            _log.warning("the live event feed fell behind and lost messages; resyncing streams")
            self._hub.resync_all()
        else:
            _log.debug("NATS (live feed): %s", error)

    async def _on_reconnected(self) -> None:
        # nats-py has replayed the subscription and flushed before calling this.
        _log.info("live event feed reconnected; resyncing streams")
        self._hub.resync_all()

    async def stop(self) -> None:
        await self._background.stop()
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(NatsError, TimeoutError):
                await asyncio.wait_for(nc.close(), 5)
