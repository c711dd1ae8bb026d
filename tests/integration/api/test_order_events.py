"""GET /v1/orders/{order_id}/events: the state first, each change in order, the order event,
then the end; fed from NATS, never held up by a slow client, many streams per process.

Streams need real HTTP (httpx's ASGI transport buffers whole responses), so this module serves
its own app with uvicorn; events are published to NATS directly as the generator would, or
committed through the outbox for the real path.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import nats
import orjson
import pytest

from services.api.app import create_app
from services.api.common.database import Database
from services.api.common.problems import NotFound
from services.api.live import EventHub, StreamTuning
from services.api.live.stream import open_order_stream
from services.api.orders.queries import create_order
from services.api.orders.schemas import CreateOrder
from shared.db import Caller, create_pool, transaction
from shared.enums import GenerationStatus
from shared.events import Event, OrderCompleted, VariantStatusChanged
from shared.lifecycle import fail_variant, release_for_retry, start_attempt
from shared.outbox import enqueue
from tests.helpers import wait_for
from tests.integration.api.live_server import serve_over_http
from tests.integration.api.support import ORDER, World

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg
    from litestar import Litestar
    from litestar.response import ServerSentEventMessage
    from nats.aio.client import Client as NatsClient

    from shared.settings import Settings
    from tests.conftest import DatabaseFactory

HEARTBEAT = 0.5
QUEUE_SIZE = 16
STATUS_FIELDS = {
    "event_id",
    "type",
    "occurred_at",
    "correlation_id",
    "variant_id",
    "order_id",
    "user_id",
    "variant_number",
    "status",
    "attempts",
    "error",
}


# --- the app under test, over HTTP ---------------------------------------------------------


@pytest.fixture(scope="module")
def events_app(settings: Settings) -> Litestar:
    tuning = StreamTuning(heartbeat_seconds=HEARTBEAT, queue_size=QUEUE_SIZE)
    return create_app(settings, stream_tuning=tuning)


@pytest.fixture(scope="module")
async def base_url(events_app: Litestar) -> AsyncIterator[str]:
    async with serve_over_http(events_app, send_buffer=32 * 1024) as server:
        feed = events_app.state.live.feed
        await wait_for(_true_when(feed.subscribed.is_set), what="the live feed to subscribe")
        yield server.url


@pytest.fixture(scope="module")
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
    async with httpx.AsyncClient(base_url=base_url, timeout=15.0, limits=limits) as client:
        yield client


@pytest.fixture(scope="module")
async def nc(nats_url: str) -> AsyncIterator[NatsClient]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()


@pytest.fixture
def hub(events_app: Litestar) -> EventHub:
    live_hub: EventHub = events_app.state.live.hub
    return live_hub


def _true_when(check: Any) -> Any:
    async def condition() -> bool:
        return bool(check())

    return condition


# --- reading a stream ----------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One dispatched SSE block: an event with JSON data, or a comment."""

    event: str | None = None
    data: dict[str, Any] | None = None
    comment: str | None = None
    id: str | None = None


class SseReader:
    """Parses a text/event-stream response block by block; None once the stream has ended."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self, timeout: float = 10.0) -> Item | None:
        async with asyncio.timeout(timeout):
            event: str | None = None
            data: list[str] = []
            comment: str | None = None
            event_id: str | None = None
            async for line in self._lines:
                if line == "":
                    if event is not None or data:
                        return Item(event=event, data=orjson.loads("\n".join(data)), id=event_id)
                    if comment is not None:
                        return Item(comment=comment)
                    continue
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "":
                    comment = value
                elif field == "event":
                    event = value
                elif field == "data":
                    data.append(value)
                elif field == "id":
                    event_id = value
            return None

    async def next_event(self, timeout: float = 10.0) -> Item | None:
        """The next event, skipping keep-alive comments."""
        deadline = time.monotonic() + timeout
        while True:
            item = await self.next(max(0.01, deadline - time.monotonic()))
            if item is None or item.comment is None:
                return item

    async def events(self, count: int, timeout: float = 10.0) -> list[Item]:
        items: list[Item] = []
        for _ in range(count):
            item = await self.next_event(timeout)
            assert item is not None, f"the stream ended after {items}"
            items.append(item)
        return items


@contextlib.asynccontextmanager
async def open_stream(
    http: httpx.AsyncClient, order_id: str, headers: dict[str, str]
) -> AsyncIterator[SseReader]:
    async with http.stream("GET", f"/v1/orders/{order_id}/events", headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield SseReader(response)


async def publish(nc: NatsClient, *events: Event) -> None:
    """As the generator's relay would: each event on its subject, with its headers."""
    for event in events:
        await nc.publish(event.subject, event.to_json(), headers=event.headers())
    await nc.flush()


def status_event(
    order: dict[str, Any], number: int, status: str, attempts: int, error: str | None = None
) -> VariantStatusChanged:
    variant = order["variants"][number - 1]
    return VariantStatusChanged(
        variant_id=variant["id"],
        order_id=order["id"],
        user_id=order["user_id"],
        variant_number=number,
        status=GenerationStatus(status),
        attempts=attempts,
        error=error,
    )


def completed_event(order: dict[str, Any], status: str) -> OrderCompleted:
    return OrderCompleted(order_id=order["id"], user_id=order["user_id"], status=status)


def summary(item: Item) -> tuple[Any, ...]:
    assert item.data is not None
    if item.event == "order":
        return ("order", item.data["status"])
    return (item.data["variant_number"], item.data["status"], item.data["attempts"])


# --- the stream over HTTP ------------------------------------------------------------------


async def test_a_stream_sends_the_state_then_each_change_in_order_then_the_order_and_ends(
    http: httpx.AsyncClient, world: World, nc: NatsClient
) -> None:
    order = await world.order(http)

    async with open_stream(http, order["id"], world.a) as stream:
        first = await stream.events(3)
        changes = [
            status_event(order, 1, "generating", 1),
            status_event(order, 2, "generating", 1),
            status_event(order, 1, "complete", 1),
            status_event(order, 2, "pending", 1, error="provider hiccup"),
            status_event(order, 2, "generating", 2),
            status_event(order, 3, "generating", 1),
            status_event(order, 2, "complete", 2),
            status_event(order, 3, "failed", 1, error="out of tune"),
        ]
        await publish(nc, *changes, completed_event(order, "failed"))
        rest = await stream.events(len(changes) + 1)
        end = await stream.next_event()

    assert [item.event for item in first] == ["variant"] * 3
    assert [summary(item) for item in first] == [(n, "pending", 0) for n in (1, 2, 3)]
    assert all(set(item.data or {}) == STATUS_FIELDS for item in first)
    assert first[0].data is not None
    assert first[0].data["type"] == "variants.status"
    assert first[0].data["order_id"] == order["id"]
    assert first[0].data["user_id"] == str(world.user_a)
    assert [summary(item) for item in rest] == [
        *((e.variant_number, e.status.value, e.attempts) for e in changes),
        ("order", "failed"),
    ]
    assert [item.data["event_id"] for item in rest[:-1] if item.data] == [
        str(e.event_id) for e in changes
    ]
    # Every event's SSE id is its event id (what EventSource sends back as Last-Event-ID).
    assert all(item.data and item.id == item.data["event_id"] for item in first + rest)
    assert rest[3].data is not None
    assert rest[3].data["error"] == "provider hiccup"
    assert rest[-1].data is not None
    assert set(rest[-1].data) >= {"event_id", "type", "occurred_at", "order_id", "user_id"}
    assert rest[-1].data["type"] == "orders.completed"
    assert end is None


async def test_a_change_committed_through_the_outbox_reaches_the_stream(
    http: httpx.AsyncClient, world: World, pool: asyncpg.Pool
) -> None:
    order = await world.order(http, variant_count=1)
    variant_id = uuid.UUID(order["variants"][0]["id"])

    async with open_stream(http, order["id"], world.a) as stream:
        snapshot = await stream.events(1)
        async with transaction(pool, Caller.service()) as conn:
            started = await start_attempt(conn, variant_id, world.user_a)
            assert started is not None
            await enqueue(conn, started[1])
        generating = await stream.events(1)
        async with transaction(pool, Caller.service()) as conn:
            await enqueue(
                conn,
                *await fail_variant(conn, variant_id, world.user_a, error="boom", attempt=1),
            )
        final = await stream.events(2)
        end = await stream.next_event()

    assert [summary(item) for item in snapshot + generating + final] == [
        (1, "pending", 0),
        (1, "generating", 1),
        (1, "failed", 1),
        ("order", "failed"),
    ]
    assert end is None


async def test_an_order_already_final_gets_its_variants_and_the_order_event_then_the_end(
    http: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(http, variant_count=2)
    await world.complete(order["variants"][0])
    await world.fail(order["variants"][1]["id"])

    started = time.monotonic()
    async with open_stream(http, order["id"], world.a) as stream:
        items = await stream.events(3)
        end = await stream.next_event()

    assert [summary(item) for item in items] == [
        (1, "complete", 1),
        (2, "failed", 3),
        ("order", "failed"),
    ]
    assert end is None
    assert time.monotonic() - started < HEARTBEAT * 4  # closed at once, not on a timer


async def test_only_the_owner_may_stream_an_order(
    http: httpx.AsyncClient, world: World, service_headers: dict[str, str]
) -> None:
    order = await world.order(http, variant_count=1)
    path = f"/v1/orders/{order['id']}/events"

    anonymous = await http.get(path)
    service = await http.get(path, headers=service_headers)
    stranger = await http.get(path, headers=world.b)
    unknown = await http.get(f"/v1/orders/{uuid.uuid4()}/events", headers=world.a)
    bad_token = await http.get(path, headers={"Authorization": "Bearer nonsense"})

    assert (anonymous.status_code, service.status_code) == (401, 403)
    assert (stranger.status_code, unknown.status_code, bad_token.status_code) == (404, 404, 401)
    for response in (anonymous, service, stranger, unknown, bad_token):
        assert response.headers["content-type"] == "application/problem+json"
    assert stranger.json()["detail"] == unknown.json()["detail"] == "no such order"


async def test_an_idle_stream_sends_keep_alive_comments(
    http: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(http, variant_count=1)

    async with open_stream(http, order["id"], world.a) as stream:
        await stream.events(1)
        started = time.monotonic()
        item = await stream.next(timeout=HEARTBEAT * 6)

    assert item == Item(comment="keep-alive")
    assert time.monotonic() - started >= HEARTBEAT * 0.8


async def test_a_client_that_goes_away_leaves_no_subscription_behind(
    http: httpx.AsyncClient, world: World, hub: EventHub
) -> None:
    order = await world.order(http, variant_count=1)
    order_id = uuid.UUID(order["id"])

    async with open_stream(http, order["id"], world.a) as stream:
        await stream.events(1)
        assert hub.subscriber_count(order_id) == 1

    await wait_for(
        _true_when(lambda: hub.subscriber_count(order_id) == 0), what="the subscription to go"
    )


async def _stuck_client(base_url: str, order_id: str, headers: dict[str, str]) -> socket.socket:
    """A client that sends its request and then never reads (a tiny receive buffer)."""
    address = urlsplit(base_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (address.hostname, address.port))
    request = (
        f"GET /v1/orders/{order_id}/events HTTP/1.1\r\nHost: {address.netloc}\r\n"
        f"Authorization: {headers['Authorization']}\r\nAccept: text/event-stream\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    return sock


async def test_a_client_that_never_reads_does_not_hold_up_another(
    http: httpx.AsyncClient, base_url: str, world: World, nc: NatsClient, hub: EventHub
) -> None:
    order = await world.order(http, variant_count=1)
    order_id = uuid.UUID(order["id"])
    bulky = "x" * 4000  # big events fill the stuck client's buffers quickly
    dropped_before = hub.dropped_total
    latencies: list[float] = []

    async with open_stream(http, order["id"], world.a) as fast:
        await fast.events(1)
        stuck = await _stuck_client(base_url, order["id"], world.a)
        try:
            await wait_for(
                _true_when(lambda: hub.subscriber_count(order_id) == 2), what="both streams"
            )
            for attempt in range(1, 400):
                status = "generating" if attempt % 2 else "pending"
                sent = time.monotonic()
                await publish(nc, status_event(order, 1, status, attempt, error=bulky))
                item = await fast.next_event(timeout=5.0)
                latencies.append(time.monotonic() - sent)
                assert item is not None
                assert summary(item) == (1, status, attempt)
                if hub.dropped_total > dropped_before:
                    break
            await wait_for(
                _true_when(lambda: hub.subscriber_count(order_id) == 1),
                what="the stuck stream to be dropped",
            )
            await publish(nc, completed_event(order, "complete"))
            last = await fast.next_event()
        finally:
            stuck.close()

    assert hub.dropped_total == dropped_before + 1, "the stuck client was never dropped"
    assert max(latencies) < 2.0, f"the fast client waited {max(latencies):.2f} s for an event"
    assert last is not None
    assert summary(last) == ("order", "complete")


async def test_two_hundred_streams_on_one_process_each_get_their_events(
    http: httpx.AsyncClient, world: World, nc: NatsClient, hub: EventHub
) -> None:
    orders = await asyncio.gather(*(world.order(http, variant_count=1) for _ in range(10)))
    per_order = 20
    started = time.monotonic()

    async with contextlib.AsyncExitStack() as stack:
        streams = await asyncio.gather(
            *(
                stack.enter_async_context(open_stream(http, order["id"], world.a))
                for order in orders
                for _ in range(per_order)
            )
        )
        await asyncio.gather(*(stream.events(1) for stream in streams))
        assert sum(hub.subscriber_count(uuid.UUID(o["id"])) for o in orders) == 200
        await publish(nc, *(status_event(order, 1, "generating", 1) for order in orders))
        news = await asyncio.gather(*(stream.events(1) for stream in streams))
        await publish(nc, *(completed_event(order, "complete") for order in orders))
        finals = await asyncio.gather(*(stream.events(1) for stream in streams))
        ends = await asyncio.gather(*(stream.next_event() for stream in streams))

    assert [summary(items[0]) for items in news] == [(1, "generating", 1)] * 200
    for index, items in enumerate(news):
        assert items[0].data is not None
        assert items[0].data["order_id"] == orders[index // per_order]["id"]
    assert [summary(items[0]) for items in finals] == [("order", "complete")] * 200
    assert ends == [None] * 200
    assert time.monotonic() - started < 30


async def test_open_streams_end_cleanly_and_at_once_when_the_server_stops(
    settings: Settings, world: World
) -> None:
    app = create_app(settings, stream_tuning=StreamTuning(heartbeat_seconds=HEARTBEAT))
    async with serve_over_http(app) as server, httpx.AsyncClient(base_url=server.url) as client:
        order = await world.order(client, variant_count=1)
        async with open_stream(client, order["id"], world.a) as stream:
            await stream.events(1)
            started = time.monotonic()
            stopping = asyncio.create_task(server.stop())
            end = await stream.next_event(timeout=5)  # a clean end of the body, not an error
        await stopping
        elapsed = time.monotonic() - started

    assert end is None
    assert elapsed < 3, f"stopping took {elapsed:.1f} s"


# --- the stream's logic, with a hub fed by hand ----------------------------------------------


@pytest.fixture(scope="module")
async def quiet_db(make_database: DatabaseFactory) -> AsyncIterator[Database]:
    """A database no relay publishes from: outbox rows stay unpublished."""
    pool = await create_pool(await make_database(), min_size=1, max_size=4)
    yield Database(pool, lambda: None)
    await pool.close()


async def _quiet_order(db: Database, user_id: uuid.UUID, variants: int) -> dict[str, Any]:
    body = CreateOrder.model_validate(ORDER | {"variant_count": variants})
    created = await create_order(
        db, Caller.user(user_id), body, idempotency_key=None, correlation_id="test"
    )
    return created.order.model_dump(mode="json")


async def _take(messages: AsyncIterator[ServerSentEventMessage], count: int) -> list[Any]:
    taken = []
    for _ in range(count):
        message = await asyncio.wait_for(anext(messages), 5)
        taken.append((message.event, orjson.loads(str(message.data))))
    return taken


async def test_events_the_snapshot_already_reflects_are_not_sent_again(
    quiet_db: Database,
) -> None:
    user_id = uuid.uuid4()
    order = await _quiet_order(quiet_db, user_id, variants=2)
    variant_id = uuid.UUID(order["variants"][0]["id"])
    async with quiet_db.run_as(Caller.service()) as conn:
        started = await start_attempt(conn, variant_id, user_id)
        assert started is not None
        released = await release_for_retry(conn, variant_id, user_id, attempt=1, error="hiccup")
        assert released is not None
        await enqueue(conn, started[1], released)
    hub = EventHub()

    with pytest.raises(NotFound):  # a variant's id names no order
        await open_order_stream(quiet_db, hub, Caller.user(user_id), variant_id, heartbeat=5)
    stream = await open_order_stream(
        quiet_db, hub, Caller.user(user_id), uuid.UUID(order["id"]), heartbeat=5
    )
    messages = stream.messages()
    snapshot = await _take(messages, 2)
    newer = status_event(order, 1, "generating", 2)
    # The relay publishes the two reflected changes late, after the client has the state.
    for event in (started[1], released, newer, completed_event(order, "complete")):
        hub.publish(event)
    live = await _take(messages, 2)

    assert [(data["variant_number"], data["status"], data["attempts"]) for _, data in snapshot] == [
        (1, "pending", 1),
        (2, "pending", 0),
    ]
    assert snapshot[0][1]["error"] == "hiccup"
    assert [(kind, data["event_id"]) for kind, data in live] == [
        ("variant", str(newer.event_id)),
        ("order", live[1][1]["event_id"]),
    ]
    with pytest.raises(StopAsyncIteration):
        await anext(messages)
    assert hub.subscriber_count() == 0


async def test_a_resync_reads_the_state_again_and_sends_what_changed(
    quiet_db: Database,
) -> None:
    user_id = uuid.uuid4()
    order = await _quiet_order(quiet_db, user_id, variants=2)
    hub = EventHub()
    stream = await open_order_stream(
        quiet_db, hub, Caller.user(user_id), uuid.UUID(order["id"]), heartbeat=5
    )
    messages = stream.messages()
    await _take(messages, 2)
    async with quiet_db.run_as(Caller.service()) as conn:
        await start_attempt(conn, uuid.UUID(order["variants"][1]["id"]), user_id)

    hub.resync_all()  # as after a NATS reconnect: events may have been missed
    changed = await _take(messages, 1)

    assert [(data["variant_number"], data["status"]) for _, data in changed] == [(2, "generating")]
    await messages.aclose()
    assert hub.subscriber_count() == 0


async def test_closing_the_hub_ends_open_streams(quiet_db: Database) -> None:
    user_id = uuid.uuid4()
    order = await _quiet_order(quiet_db, user_id, variants=1)
    hub = EventHub()
    stream = await open_order_stream(
        quiet_db, hub, Caller.user(user_id), uuid.UUID(order["id"]), heartbeat=5
    )
    messages = stream.messages()
    await _take(messages, 1)
    waiting = asyncio.ensure_future(anext(messages))

    hub.close()  # what the app's lifespan does on shutdown

    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 5)
    assert hub.subscriber_count() == 0
    late = hub.subscribe(uuid.UUID(order["id"]))
    assert late.ended
