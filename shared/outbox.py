"""The transactional outbox: events are written in the transaction of the change they announce,
and a relay publishes them to JetStream afterwards.

One relay at a time publishes (a PostgreSQL advisory lock elects it), in outbox order, so a
variant's status events reach NATS in the order of its changes. Every service runs a relay; the
others stand by and take over when the leader's connection goes. The relay wakes on commit
(LISTEN/NOTIFY) and also polls, so a missed wake-up delays nothing for long. A relay that dies
between publishing and marking re-sends on the next pass: JetStream drops the duplicate by its
``Nats-Msg-Id`` (the event id) within the stream's duplicate window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson
from nats.errors import Error as NatsError

from shared.db import Caller, connect, transaction

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nats.js import JetStreamContext

    from shared.events import Event

__all__ = ["OUTBOX_CHANNEL", "OutboxRelay", "enqueue", "unpublished_count"]

OUTBOX_CHANNEL = "serenade_outbox"
_LEADER_LOCK = 0x5E4E_0B0C
_log = logging.getLogger(__name__)


async def enqueue(conn: asyncpg.Connection, *events: Event) -> None:
    """Write ``events`` to the outbox in the caller's transaction (which must be service_role)."""
    if not events:
        return
    await conn.executemany(
        "INSERT INTO outbox (event_id, subject, payload, headers) VALUES ($1, $2, $3, $4)",
        [
            (event.event_id, event.subject, event.model_dump(mode="json"), event.headers())
            for event in events
        ],
    )


async def unpublished_count(conn: asyncpg.Connection) -> int:
    """Events written but not yet published (the outbox backlog)."""
    async with transaction(conn, Caller.service()):
        count = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    return int(count)


class OutboxRelay:
    """Publishes outbox rows to JetStream, oldest first, while it holds the leader lock."""

    def __init__(
        self,
        dsn: str,
        js: JetStreamContext,
        *,
        poll_interval: float = 1.0,
        batch_size: int = 200,
        publish_timeout: float = 5.0,
    ) -> None:
        self._dsn = dsn
        self._js = js
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._publish_timeout = publish_timeout
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.is_leader = False
        self.published_total = 0

    def wake(self) -> None:
        """Ask for a pass now (a commit in this process wrote events)."""
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
                _log.warning("outbox relay lost PostgreSQL: %s; retrying", error)
            except Exception:  # noqa: BLE001 - the relay must outlive any one bad pass
                _log.exception("outbox relay failed; retrying")
            self.is_leader = False
            await asyncio.sleep(self._poll_interval)

    async def _lead(self) -> None:
        """Hold one connection: take the leader lock, then publish on every wake-up or poll."""
        conn = await connect(self._dsn)
        try:
            # Polling PostgreSQL for the lock: there is no in-process event to wait on.
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LEADER_LOCK):  # noqa: ASYNC110
                await asyncio.sleep(self._poll_interval)
            self.is_leader = True
            await conn.add_listener(OUTBOX_CHANNEL, self._on_notify)
            while True:
                sent = await self.publish_pending(conn)
                if sent >= self._batch_size:
                    continue  # more are waiting: no pause between full batches
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval)
                if conn.is_closed():
                    return
        finally:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    def _on_notify(self, *_args: Any) -> None:
        self._wake.set()

    async def publish_pending(self, conn: asyncpg.Connection) -> int:
        """Publish one batch of unpublished events in order; return how many went out."""
        async with transaction(conn, Caller.service()):
            rows = await conn.fetch(
                "SELECT id, subject, payload, headers FROM outbox"
                " WHERE published_at IS NULL ORDER BY id LIMIT $1",
                self._batch_size,
            )
        if not rows:
            return 0
        published = await self._publish(rows)
        if published:
            async with transaction(conn, Caller.service()):
                await conn.execute(
                    "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                    published,
                )
            self.published_total += len(published)
        return len(published)

    async def _publish(self, rows: Sequence[asyncpg.Record]) -> list[int]:
        """Publish in order, stopping at the first failure so that order is kept."""
        published: list[int] = []
        for row in rows:
            payload = orjson.dumps(row["payload"])
            try:
                await self._js.publish(
                    row["subject"],
                    payload,
                    headers=dict(row["headers"]),
                    timeout=self._publish_timeout,
                )
            except (NatsError, TimeoutError) as error:
                _log.warning("outbox relay cannot publish (%s); will retry", error)
                break
            published.append(row["id"])
        return published
