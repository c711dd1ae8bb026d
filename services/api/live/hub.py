"""The in-process fan-out of status events: per-order subscriptions with bounded queues.

``EventHub.publish`` never waits: it offers each event to the order's subscriptions and drops
(ends) a subscription whose queue is full, so one client that stops reading never holds up the
feed or another client. A dropped client's stream ends; an ``EventSource`` reconnects and starts
again from a fresh snapshot.

The hub keeps subscriptions by weak reference: a stream whose response never started (the
client left first) cannot leak its subscription.
"""

import asyncio
import enum
import functools
import uuid
import weakref

from shared.events import OrderCancelled, OrderCompleted, VariantStatusChanged

__all__ = ["DEFAULT_QUEUE_SIZE", "EventHub", "LiveEvent", "LiveItem", "Signal", "Subscription"]

# Far more than one order ever has in flight (five variants, a few changes each).
DEFAULT_QUEUE_SIZE = 64

LiveEvent = VariantStatusChanged | OrderCompleted | OrderCancelled


class Signal(enum.Enum):
    """What the hub tells a subscription besides events."""

    # Events may have been missed (the feed reconnected to NATS): read the state again.
    RESYNC = "resync"
    # No more items will come (the hub closed, or the client fell too far behind).
    END = "end"


LiveItem = LiveEvent | Signal


class Subscription:
    """One stream's queue of the events of one order."""

    __slots__ = ("__weakref__", "_hub", "_queue", "ended", "order_id", "ref")

    def __init__(self, hub: "EventHub", order_id: uuid.UUID, size: int) -> None:
        self.order_id = order_id
        self.ended = False
        self._hub = hub
        self._queue: asyncio.Queue[LiveItem] = asyncio.Queue(maxsize=size)
        # The hub's weak handle on this subscription (None when it was never registered).
        self.ref: weakref.ref[Subscription] | None = None

    async def next(self, timeout: float) -> LiveItem | None:
        """The next item, or None when none came within ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                return await self._queue.get()
        except TimeoutError:
            return None

    def offer(self, item: LiveItem) -> bool:
        """Queue ``item`` unless the queue is full or the subscription has ended."""
        if self.ended:
            return True
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True

    def end(self) -> None:
        """No more items: what is queued is dropped and the reader sees ``Signal.END`` next."""
        if self.ended:
            return
        self.ended = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(Signal.END)

    def close(self) -> None:
        """Leave the hub (the stream is over)."""
        self._hub.unsubscribe(self)


class EventHub:
    """Subscriptions by order id, fed by ``publish`` (one NATS feed per process)."""

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._queue_size = queue_size
        self._orders: dict[uuid.UUID, set[weakref.ref[Subscription]]] = {}
        self.closed = False
        self.dropped_total = 0

    def subscribe(self, order_id: uuid.UUID) -> Subscription:
        """A new subscription to ``order_id``'s events (ended at once if the hub is closed)."""
        subscription = Subscription(self, order_id, self._queue_size)
        if self.closed:
            subscription.end()
            return subscription
        ref = weakref.ref(subscription, functools.partial(self._forget, order_id))
        subscription.ref = ref
        self._orders.setdefault(order_id, set()).add(ref)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        ref = subscription.ref
        if ref is not None:
            self._forget(subscription.order_id, ref)

    def _forget(self, order_id: uuid.UUID, ref: "weakref.ref[Subscription]") -> None:
        refs = self._orders.get(order_id)
        if refs is None:
            return
        refs.discard(ref)
        if not refs:
            del self._orders[order_id]

    def _live(self, order_id: uuid.UUID | None = None) -> list[Subscription]:
        groups = self._orders.values() if order_id is None else [self._orders.get(order_id, set())]
        return [sub for refs in groups for ref in list(refs) if (sub := ref()) is not None]

    def watches(self, order_id: uuid.UUID) -> bool:
        """Whether any stream follows ``order_id`` (lets the feed skip parsing the rest)."""
        return order_id in self._orders

    @property
    def watching(self) -> bool:
        return bool(self._orders)

    def subscriber_count(self, order_id: uuid.UUID | None = None) -> int:
        """Open subscriptions, of one order or of all."""
        return len(self._live(order_id))

    def publish(self, event: LiveEvent) -> None:
        """Offer ``event`` to its order's subscriptions; end those that cannot take it."""
        for subscription in self._live(event.order_id):
            if not subscription.offer(event):
                self._drop(subscription)

    def resync_all(self) -> None:
        """Tell every subscription that events may have been missed."""
        for subscription in self._live():
            if not subscription.offer(Signal.RESYNC):
                self._drop(subscription)

    def _drop(self, subscription: Subscription) -> None:
        self.dropped_total += 1
        subscription.end()
        self.unsubscribe(subscription)

    def close(self) -> None:
        """End every subscription and refuse new ones (the app is stopping)."""
        self.closed = True
        for subscription in self._live():
            subscription.end()
            self.unsubscribe(subscription)
