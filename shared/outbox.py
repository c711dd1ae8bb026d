"""The transactional outbox: events are written in the transaction of the change they announce,
and a relay publishes them to JetStream afterwards.

One relay at a time publishes (a PostgreSQL advisory lock elects it), in outbox order, so a
variant's status events reach NATS in the order of its changes. Every service runs a relay; the
others stand by and take over when the leader's connection goes. The relay wakes when a process
commits events (in-process when it leads, otherwise a core NATS message on ``WAKE_SUBJECT`` to
whichever relay does) and also polls, so a missed wake-up delays nothing for long. Not
LISTEN/NOTIFY: PostgreSQL serialises the commits of every transaction that notifies, holding a
cluster-wide lock through its WAL flush, and every outbox write would pay for it. A relay that dies
between publishing and marking re-sends on the next pass: JetStream drops the duplicate by its
``Nats-Msg-Id`` (the event id) within the stream's duplicate window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import asyncpg
import orjson
from nats.errors import Error as NatsError

from shared.background import BackgroundTasks
from shared.db import DATABASE_ERRORS, Caller, connect, transaction
from shared.unit_of_work import MAX_EVENT_BYTES, EventTooLargeError, enqueue

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription


__all__ = [
    "MAX_EVENT_BYTES",
    "WAKE_SUBJECT",
    "EventTooLargeError",
    "OutboxRelay",
    "enqueue",
    "unpublished_count",
]

# Core NATS, outside the stream's ``serenade.>``: a wake-up is worth nothing once missed.
WAKE_SUBJECT = "_serenade.outbox.wake"
_LEADER_LOCK = 0x5E4E_0B0C
_log = logging.getLogger(__name__)


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
        nc: NatsClient,
        *,
        poll_interval: float = 1.0,
        batch_size: int = 100,
        max_batch_size: int = 2000,
        publish_timeout: float = 5.0,
    ) -> None:
        if not 1 <= batch_size <= max_batch_size:
            raise ValueError("need 1 <= batch_size <= max_batch_size")
        self._dsn = dsn
        self._nc = nc
        self._acks = _Acks(nc)
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._max_batch_size = max_batch_size
        # Rows the next pass reads: batch_size after an idle spell, growing while passes come
        # back full (see _next_read_size).
        self._read_size = batch_size
        self._publish_timeout = publish_timeout
        self._wake = asyncio.Event()
        self._signal = asyncio.Event()
        self._background = BackgroundTasks()
        self._wake_sub: Subscription | None = None
        # Published, not yet marked: marked in the transaction that reads the next batch.
        self._unmarked: list[int] = []
        self.is_leader = False
        self.published_total = 0
        # Passes that published something, and the most rows one of them read.
        self.passes_total = 0
        self.largest_pass = 0

    def wake(self) -> None:
        """Ask for a pass now (a commit in this process wrote events): of this relay when it
        leads, else of the leader, by one NATS message however many commits ask at once."""
        self._wake.set()
        if not self.is_leader:
            self._signal.set()

    async def start(self) -> None:
        if not self._background.started:
            self._background.start(self._signal_leader(), name="outbox-wake")
            self._background.start(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        await self._background.stop()
        await self._stop_listening()
        await self._acks.close()

    async def _stop_listening(self) -> None:
        sub, self._wake_sub = self._wake_sub, None
        if sub is not None:
            with contextlib.suppress(NatsError, OSError):
                await sub.unsubscribe()

    async def _on_wake(self, _msg: Msg) -> None:
        self._wake.set()

    async def _signal_leader(self) -> None:
        while True:
            await self._signal.wait()
            self._signal.clear()  # the wakes asked for meanwhile ride on this one message
            try:
                await self._nc.publish(WAKE_SUBJECT, b"")
            except (NatsError, OSError) as error:  # the leader's poll covers it
                _log.debug("cannot wake the outbox relay: %s", error)

    async def _run(self) -> None:
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except DATABASE_ERRORS as error:
                _log.warning("outbox relay lost PostgreSQL: %s; retrying", error)
            except Exception:  # noqa: BLE001 - the relay must outlive any one bad pass
                _log.exception("outbox relay failed; retrying")
            await asyncio.sleep(self._poll_interval)

    async def _lead(self) -> None:
        """Hold one connection: take the leader lock, then publish on every wake-up or poll."""
        conn = await connect(self._dsn)
        try:
            # Polling PostgreSQL for the lock: there is no in-process event to wait on.
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LEADER_LOCK):  # noqa: ASYNC110
                await asyncio.sleep(self._poll_interval)
            self.is_leader = True
            self._unmarked = []  # a new leader reads them again (JetStream drops the copies)
            self._read_size = self._batch_size
            # Only the leader listens: the others' commits would otherwise wake every process.
            try:
                self._wake_sub = await self._nc.subscribe(WAKE_SUBJECT, cb=self._on_wake)
            except (NatsError, OSError) as error:  # it polls meanwhile; NATS is needed anyway
                _log.warning("outbox relay cannot listen for wake-ups: %s", error)
            while True:
                # Cleared before the pass: a commit during it asks for the next one at once.
                self._wake.clear()
                if await self.publish_pending(conn):
                    continue  # mark them and read on, with no pause: more may be waiting
                # asyncio.timeout, not wait_for: on Python 3.11 a wait_for whose wake-up came
                # in the same pass of the loop as a cancel returns normally and swallows the
                # cancel (bpo-42130), and this loop then ran on with stop() waiting for it.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_interval):
                        await self._wake.wait()
                if conn.is_closed():
                    return
        finally:
            self.is_leader = False
            await self._stop_listening()
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    async def publish_pending(self, conn: asyncpg.Connection) -> int:
        """Mark what the last pass published and read the next batch (one statement, one
        transaction), then publish that batch in order; return how many went out."""
        marking = self._unmarked
        limit = self._read_size
        async with transaction(conn, Caller.service()):
            rows = await conn.fetch(
                "WITH marked AS (UPDATE outbox SET published_at = now()"
                " WHERE id = ANY($1::bigint[]) AND published_at IS NULL)"
                " SELECT id, subject, payload, headers FROM outbox"
                " WHERE published_at IS NULL AND NOT id = ANY($1::bigint[]) ORDER BY id LIMIT $2",
                marking,
                limit,
            )
        self._unmarked = []
        if not rows:
            self._read_size = self._batch_size
            return 0
        published = await self._publish(rows)
        self._unmarked = published
        self.published_total += len(published)
        self.passes_total += 1
        self.largest_pass = max(self.largest_pass, len(rows))
        self._read_size = self._next_read_size(limit, len(rows), len(published))
        return len(published)

    def _next_read_size(self, limit: int, read: int, published: int) -> int:
        """The next pass's read: four times this one's while passes come back full (a backlog
        is waiting: each pass's fixed cost, three round trips, a commit and the last wave's
        acks, is spread over more events), back to ``batch_size`` when one is not (the backlog
        is gone: a lone event is read, published and marked at once, not after a large read),
        or after a failure (the rows after it are sent again; fewer sent, fewer resent).

        Capped at ``max_batch_size`` (2000 by default) because a pass holds its rows in memory
        (events may be up to MAX_EVENT_BYTES each), sends them all before the next pass marks
        any (a leader that dies re-sends a whole pass, within JetStream's duplicate window), and
        a wave's acks must all come within ``publish_timeout``; while past a thousand or two the
        fixed cost of a pass (a few milliseconds) is already under a tenth of the ~20 us of
        relay CPU each of its events takes.
        """
        if published < read or read < limit:
            return self._batch_size
        return min(limit * 4, self._max_batch_size)

    async def _publish(self, rows: Sequence[asyncpg.Record]) -> list[int]:
        """Publish in order, stopping at the first failure so that order is kept.

        Pipelined: a wave of rows is sent back to back on the one connection, then its acks are
        awaited together (awaiting each ack before the next send held the relay to one event
        per round trip). A wave never holds two events of the same variant (or, for order-level
        events, of the same order), so those stay strictly ordered even when a wave fails
        halfway; the rows after a failure are sent again later and JetStream drops any copy it
        already stored by its Nats-Msg-Id.
        """
        published: list[int] = []
        for wave in _waves(rows):
            acked = await self._publish_wave(wave)
            published += acked
            if len(acked) < len(wave):
                break
        return published

    async def _publish_wave(self, rows: Sequence[asyncpg.Record]) -> list[int]:
        """Send ``rows`` in order, then wait for their acks; the ids acked before the first
        failure."""
        failure: BaseException | str | None = None  # the first, which stops the wave
        sent = 0
        try:
            reply = await self._acks.begin(len(rows))
            for position, row in enumerate(rows):
                await self._nc.publish(
                    row["subject"],
                    orjson.dumps(row["payload"]),
                    reply=f"{reply}{position}",
                    headers=row["headers"],
                )
                sent += 1
        except (NatsError, OSError) as error:
            failure = error
        problems = await self._acks.wait(sent, self._publish_timeout) if sent else []
        published: list[int] = []
        for row, problem in zip(rows, problems, strict=False):
            failure = failure or problem
            if failure is None:
                published.append(row["id"])
        if failure is not None:
            _log.warning("outbox relay cannot publish (%s); will retry", failure)
        return published


_NO_ACK = "no ack in time"


class _Acks:
    """JetStream's acks to the relay's publishes, gathered on one inbox subscription.

    nats-py's ``publish_async`` took as much CPU per event as the publish itself (a semaphore, a
    fresh reply token and future per message, each ack parsed into a dataclass by the standard
    json module). One wave at a time is in flight here, so an ack is matched by the wave's
    number and the event's position in its reply subject, and is checked for the one thing the
    relay needs: stored (or dropped as a duplicate), or not.
    """

    def __init__(self, nc: NatsClient) -> None:
        self._nc = nc
        self._inbox = ""
        self._sub: Subscription | None = None
        self._wave = 0
        # Per position: what its ack said went wrong (None: stored); _NO_ACK until it comes.
        self._problems: list[str | None] = []
        self._answered: list[bool] = []
        self._waiting = 0
        self._all_in = asyncio.Event()

    async def begin(self, size: int) -> str:
        """Start a wave of ``size`` events; the reply subject prefix (add the position)."""
        if self._sub is None:
            self._inbox = self._nc.new_inbox()
            self._sub = await self._nc.subscribe(f"{self._inbox}.>", cb=self._on_ack)
        self._wave += 1  # a late ack of an earlier wave is ignored: its event is sent again
        self._problems = [_NO_ACK] * size
        self._answered = [False] * size
        self._waiting = size
        self._all_in.clear()
        return f"{self._inbox}.{self._wave}."

    async def wait(self, sent: int, timeout: float) -> list[str | None]:
        """Wait (up to ``timeout``) for the acks of the first ``sent`` events of the wave; what
        went wrong with each (None: stored)."""
        self._waiting -= len(self._problems) - sent  # never sent: no ack will come
        if self._waiting > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):  # never swallows a cancel (see _lead)
                    await self._all_in.wait()
        problems = self._problems[:sent]
        self._wave += 1  # whatever still comes for this wave is late
        return problems

    async def _on_ack(self, msg: Msg) -> None:
        _, wave, position = msg.subject.rsplit(".", 2)
        if int(wave) != self._wave:
            return
        index = int(position)
        if self._answered[index]:
            return
        self._answered[index] = True
        self._problems[index] = _ack_problem(msg)
        self._waiting -= 1
        if self._waiting <= 0:
            self._all_in.set()

    async def close(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(NatsError, OSError):
                await sub.unsubscribe()


def _ack_problem(msg: Msg) -> str | None:
    """None when ``msg`` is JetStream's ack of a stored (or deduplicated) event, else what it
    says went wrong: a status (503: no stream took the subject) or an error."""
    if msg.headers and msg.headers.get("Status"):
        return f"status {msg.headers['Status']} {msg.headers.get('Description', '')}".strip()
    try:
        ack = orjson.loads(msg.data)
    except orjson.JSONDecodeError:
        return f"an ack that is not JSON: {msg.data[:200]!r}"
    if isinstance(ack, dict) and "seq" in ack and "error" not in ack:
        return None
    return f"refused: {ack.get('error') if isinstance(ack, dict) else ack}"


def _waves(rows: Sequence[asyncpg.Record]) -> list[list[asyncpg.Record]]:
    """``rows`` cut, in order, into runs in which no ordering key repeats (the variant an event
    is about, else its order, else nothing: the row is unordered with respect to the others)."""
    waves: list[list[asyncpg.Record]] = [[]]
    keys: set[object] = set()
    for row in rows:
        payload = row["payload"]
        key = None
        if isinstance(payload, dict):
            key = payload.get("variant_id") or payload.get("order_id")
        if key is not None and key in keys:
            waves.append([])
            keys.clear()
        if key is not None:
            keys.add(key)
        waves[-1].append(row)
    return [wave for wave in waves if wave]
