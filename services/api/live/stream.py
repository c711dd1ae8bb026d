"""``GET /v1/orders/{order_id}/events``: an order's status as Server-Sent Events.

The stream subscribes to the hub first, then reads the order's state, so no change can fall
between the two. Which queued events the state already reflects is decided exactly: a change
and its outbox row commit together, so the state read also returns the ids of the order's
events in the outbox as that same statement sees them; those are skipped when they arrive.
Only rows published after the subscription can arrive, and the relay publishes in outbox order
and marks rows after publishing them, so the rows to look at start from the oldest row still
unpublished just before subscribing (an index range scan, however long the outbox).
A variant whose status, attempts and error are those last sent is never sent twice.
"""

import logging
import uuid
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass

import asyncpg
import orjson
from litestar.response import ServerSentEventMessage

from services.api.common.database import Database
from services.api.common.problems import NotFound
from services.api.live.hub import EventHub, LiveEvent, Signal, Subscription
from shared.db import DATABASE_UNREACHABLE, Caller, act_as_service
from shared.enums import GenerationStatus
from shared.events import OrderCancelled, OrderCompleted, VariantStatusChanged

__all__ = ["KEEP_ALIVE", "OrderStream", "Snapshot", "open_order_stream", "read_snapshot"]

KEEP_ALIVE = ServerSentEventMessage(comment="keep-alive", data=None)
_log = logging.getLogger(__name__)

# The oldest outbox row not yet published (or the next id when all are): any row published
# after this moment has at least this id.
_WATERMARK = (
    "SELECT coalesce((SELECT min(id) FROM outbox WHERE published_at IS NULL),"
    " (SELECT coalesce(max(id), 0) + 1 FROM outbox))"
)
# One statement, so one view of the database: the variants and the events they reflect.
_SNAPSHOT = (
    "SELECT v.id, v.variant_number, v.status, v.attempts, v.error, v.updated_at, o.user_id,"
    " ARRAY(SELECT event_id FROM outbox WHERE id >= $2 AND payload->>'order_id' = $3) AS announced,"
    " (SELECT p.lapse_reason FROM payments p WHERE p.order_id = o.id AND p.kind = 'order')"
    " AS cancelled"
    " FROM orders o JOIN song_variants v ON v.order_id = o.id"
    " WHERE o.id = $1 ORDER BY v.variant_number"
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An order's variants as status events, and the ids of the events that state reflects."""

    order_id: uuid.UUID
    variants: tuple[VariantStatusChanged, ...]
    announced: frozenset[uuid.UUID]
    # Why the order's own payment lapsed ('cancelled' or 'expired'), with payments on.
    cancelled: str | None = None

    @property
    def final(self) -> bool:
        return bool(self.variants) and all(v.status.is_final for v in self.variants)

    def completion(self) -> OrderCompleted | OrderCancelled:
        """The ``orders.completed`` (or ``orders.cancelled``) event of a final snapshot."""
        assert self.final
        if self.cancelled is not None:
            return OrderCancelled(
                order_id=self.order_id,
                user_id=self.variants[0].user_id,
                reason="expired" if self.cancelled == "expired" else "cancelled",
                occurred_at=max(v.occurred_at for v in self.variants),
            )
        failed = any(v.status is GenerationStatus.FAILED for v in self.variants)
        return OrderCompleted(
            order_id=self.order_id,
            user_id=self.variants[0].user_id,
            status="failed" if failed else "complete",
            occurred_at=max(v.occurred_at for v in self.variants),
        )


async def _snapshot(conn: asyncpg.Connection, order_id: uuid.UUID, watermark: int) -> Snapshot:
    rows = await conn.fetch(_SNAPSHOT, order_id, watermark, str(order_id))
    variants = tuple(
        VariantStatusChanged(
            variant_id=row["id"],
            order_id=order_id,
            user_id=row["user_id"],
            variant_number=row["variant_number"],
            status=GenerationStatus(row["status"]),
            attempts=row["attempts"],
            error=row["error"],
            occurred_at=row["updated_at"],
        )
        for row in rows
    )
    announced = frozenset(rows[0]["announced"]) if rows else frozenset[uuid.UUID]()
    return Snapshot(order_id, variants, announced, rows[0]["cancelled"] if rows else None)


async def _subscribe_and_read(
    conn: asyncpg.Connection, hub: EventHub, order_id: uuid.UUID
) -> tuple[Subscription, Snapshot]:
    """Subscribe, then read: nothing committed after the read can be missed. Service role."""
    await act_as_service(conn)
    watermark = int(await conn.fetchval(_WATERMARK))
    subscription = hub.subscribe(order_id)
    try:
        return subscription, await _snapshot(conn, order_id, watermark)
    except BaseException:
        subscription.close()
        raise


async def read_snapshot(db: Database, caller: Caller, order_id: uuid.UUID) -> Snapshot:
    """The order's state again (after a resync), without a new subscription."""
    async with db.run_as(caller) as conn:
        await act_as_service(conn)
        return await _snapshot(conn, order_id, int(await conn.fetchval(_WATERMARK)))


async def open_order_stream(
    db: Database, hub: EventHub, caller: Caller, order_id: uuid.UUID, *, heartbeat: float
) -> "OrderStream":
    """The caller's order as a stream; 404 when the caller cannot see it (row-level security)."""
    async with db.run_as(caller) as conn:
        if await conn.fetchval("SELECT 1 FROM orders WHERE id = $1", order_id) is None:
            raise NotFound("no such order")
        subscription, snapshot = await _subscribe_and_read(conn, hub, order_id)
    return OrderStream(
        db=db, caller=caller, subscription=subscription, snapshot=snapshot, heartbeat=heartbeat
    )


def _message(event: LiveEvent) -> ServerSentEventMessage:
    """The event as SSE, its ``event_id`` as the ``id:`` line. A snapshot's events are made from
    the state read (fresh ids, no correlation id); a client that reconnects, ``Last-Event-ID``
    or not, gets a new snapshot first, so it misses no state."""
    if isinstance(event, OrderCancelled):
        # The order's end, as orders.completed's fields with status ``cancelled`` (and why).
        data = orjson.dumps({**event.model_dump(mode="json"), "status": "cancelled"}).decode()
        return ServerSentEventMessage(event="order", data=data, id=str(event.event_id))
    kind = "order" if isinstance(event, OrderCompleted) else "variant"
    return ServerSentEventMessage(event=kind, data=event.model_dump_json(), id=str(event.event_id))


class OrderStream:
    """The messages of one client's stream: the state, each change, the completion."""

    def __init__(
        self,
        *,
        db: Database,
        caller: Caller,
        subscription: Subscription,
        snapshot: Snapshot,
        heartbeat: float,
    ) -> None:
        self._db = db
        self._caller = caller
        self._subscription = subscription
        self._snapshot = snapshot
        self._heartbeat = heartbeat
        self._announced: set[uuid.UUID] = set()
        self._sent: dict[uuid.UUID, tuple[GenerationStatus, int, str | None]] = {}
        self.done = False

    async def messages(self) -> AsyncGenerator[ServerSentEventMessage, None]:
        """Every variant's state, then its changes, until the order is final (then close)."""
        try:
            for message in self._apply_snapshot(self._snapshot):
                yield message
            while not self.done:
                item = await self._subscription.next(self._heartbeat)
                if item is None:
                    yield KEEP_ALIVE
                elif item is Signal.END:
                    return
                elif item is Signal.RESYNC:
                    try:
                        snapshot = await read_snapshot(
                            self._db, self._caller, self._snapshot.order_id
                        )
                    except DATABASE_UNREACHABLE as error:
                        # The client reconnects and starts from a fresh snapshot.
                        _log.warning("ending an event stream: cannot resync (%s)", error)
                        return
                    for message in self._apply_snapshot(snapshot):
                        yield message
                elif (news := self.apply(item)) is not None:
                    yield news
        finally:
            self._subscription.close()

    def _apply_snapshot(self, snapshot: Snapshot) -> Iterator[ServerSentEventMessage]:
        self._announced |= snapshot.announced
        if not snapshot.variants:  # the order is gone
            self.done = True
            return
        for variant in snapshot.variants:
            if self._changes(variant):
                yield _message(variant)
        if snapshot.final:
            self.done = True
            yield _message(snapshot.completion())

    def apply(self, event: LiveEvent) -> ServerSentEventMessage | None:
        """The message for a live event, or None when the client already has its news."""
        if event.event_id in self._announced:
            return None
        if isinstance(event, (OrderCompleted, OrderCancelled)):
            self.done = True
            return _message(event)
        return _message(event) if self._changes(event) else None

    def _changes(self, variant: VariantStatusChanged) -> bool:
        state = (variant.status, variant.attempts, variant.error)
        if self._sent.get(variant.variant_id) == state:
            return False
        self._sent[variant.variant_id] = state
        return True
