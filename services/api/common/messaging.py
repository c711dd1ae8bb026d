"""The API's link to NATS: a connection that reconnects forever, the stream ensured, the relay.

Nothing here blocks the API's start or its requests: orders are accepted while NATS is away
(their events wait in the outbox) and go out once the connection is back.
"""

import asyncio
import contextlib
import logging

from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError

from shared.background import BackgroundTasks
from shared.outbox import OutboxRelay
from shared.stream import ensure_stream

__all__ = ["Messaging"]

_log = logging.getLogger(__name__)


class Messaging:
    """Owns the NATS connection and the outbox relay for the life of the app."""

    def __init__(self, servers: list[str], dsn: str, *, poll_interval: float = 1.0) -> None:
        self._servers = servers
        self._dsn = dsn
        self._poll_interval = poll_interval
        self._background = BackgroundTasks()
        self.nc: NatsClient | None = None
        self.relay: OutboxRelay | None = None
        self.stream_ready = False
        self._stopping = False

    async def start(self) -> None:
        """Begin connecting in the background; returns at once."""
        self._background.start(self._run(), name="api-messaging")

    def wake_relay(self) -> None:
        if self.relay is not None:
            self.relay.wake()

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def ping(self, timeout: int = 1) -> bool:
        """Whether NATS answers a round trip now."""
        if self.nc is None or not self.nc.is_connected:
            return False
        try:
            await self.nc.flush(timeout=timeout)
        except (NatsError, TimeoutError):
            return False
        return True

    async def _run(self) -> None:
        nc = NatsClient()
        self.nc = nc
        await nc.connect(
            self._servers,
            name="serenade-api",
            max_reconnect_attempts=-1,  # forever: the outbox holds events meanwhile
            reconnect_time_wait=1,
            connect_timeout=2,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )
        _log.info("connected to NATS at %s", nc.connected_url.netloc if nc.connected_url else "?")
        js = nc.jetstream()
        while not self.stream_ready:
            try:
                await ensure_stream(js)
                self.stream_ready = True
            except (NatsError, TimeoutError) as error:
                _log.warning("cannot ensure stream yet (%s); retrying", error)
                await asyncio.sleep(self._poll_interval)
        self.relay = OutboxRelay(self._dsn, nc, poll_interval=self._poll_interval)
        await self.relay.start()

    async def _on_error(self, error: Exception) -> None:
        _log.debug("NATS: %s", error)

    async def _on_disconnected(self) -> None:
        if not self._stopping:
            _log.warning("disconnected from NATS; reconnecting")

    async def _on_reconnected(self) -> None:
        _log.info("reconnected to NATS")

    async def stop(self) -> None:
        self._stopping = True
        await self._background.stop()
        if self.relay is not None:
            await self.relay.stop()
            self.relay = None
        if self.nc is not None and not self.nc.is_closed:
            # drain() can hang with pull subscriptions; the API has none, and close is bounded.
            with contextlib.suppress(NatsError, TimeoutError):
                await asyncio.wait_for(self.nc.close(), 5)
        self.nc = None
