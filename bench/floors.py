"""The floors: the same database work with bare asyncpg, the same NATS traffic with bare nats-py.

Nothing of serenade runs here but the SQL column lists (so that the same columns are read and
written). Each worker owns a connection (no pool), and every transaction takes the caller's role
and claims as the API's do, so row-level security costs the floor what it costs serenade.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg
import nats
import orjson
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

from bench.workload import ORDER, event_payload
from services.api.orders.views import ORDER_COLUMNS, VARIANT_COLUMNS
from shared.events import DUPLICATE_WINDOW_SECONDS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

    from bench.workload import User

__all__ = [
    "FloorRun",
    "db_connections",
    "get_order_operation",
    "nats_pipeline_floor",
    "pipeline_db_floor",
    "post_order_operation",
]

_TAKE_ROLE = (
    "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true),"
    " set_config('request.share_token', $3, true)"
)
_SERVICE_CLAIMS = '{"role":"service_role"}'
_INSERT_ORDER = (
    "INSERT INTO orders (user_id, recipient_name, occasion, occasion_date, genre, mood, story,"
    " idempotency_key, request_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    f" ON CONFLICT (user_id, idempotency_key) DO NOTHING RETURNING {ORDER_COLUMNS}"
)
_INSERT_VARIANTS = (
    "INSERT INTO song_variants (order_id, variant_number)"
    f" SELECT $1, n FROM generate_series(1, $2::int) AS n RETURNING {VARIANT_COLUMNS}"
)
# Written as already published: the rows (and the NOTIFY their trigger sends) cost the floor
# what they cost serenade, but serenade's relay must not publish the floor's events, or its
# generator would go to work on them in the middle of the floor's measurement.
_INSERT_OUTBOX = (
    "INSERT INTO outbox (event_id, subject, payload, headers, published_at)"
    " SELECT e, s, p, h, now() FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::jsonb[])"
    " AS t (e, s, p, h)"
)
_READ_ORDER = (
    "SELECT o.id, o.user_id, o.recipient_name, o.occasion, o.occasion_date, o.genre, o.mood,"
    " o.story, o.created_at, o.updated_at, v.id, v.variant_number, v.status, v.share_token,"
    " v.attempts, v.error, v.title, v.lyrics, v.duration_seconds, v.created_at, v.started_at,"
    " v.completed_at FROM orders o LEFT JOIN song_variants v ON v.order_id = o.id"
    " WHERE o.id = $1 ORDER BY v.variant_number"
)
_START = (
    "UPDATE song_variants SET status = 'generating', attempts = attempts + 1,"
    " started_at = now(), completed_at = NULL WHERE id = $1 AND status IN ('pending', 'generating')"
)
_COMPLETE = (
    "UPDATE song_variants SET status = 'complete', storage_path = $2, title = $3, lyrics = $4,"
    " duration_seconds = 0.25, error = NULL, completed_at = now()"
    " WHERE id = $1 AND status = 'generating'"
)
_OCCASION_DATE = dt.date.fromisoformat(str(ORDER["occasion_date"]))


@dataclass(frozen=True, slots=True)
class FloorRun:
    """N orders' worth of work done in ``seconds``."""

    orders: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.orders / self.seconds if self.seconds else 0.0


@contextlib.asynccontextmanager
async def db_connections(dsn: str, count: int) -> AsyncIterator[list[asyncpg.Connection]]:
    """``count`` dedicated connections, closed on exit."""
    connections = list(await asyncio.gather(*(asyncpg.connect(dsn) for _ in range(count))))
    try:
        yield connections
    finally:
        await asyncio.gather(*(conn.close() for conn in connections))


async def _create_order(conn: asyncpg.Connection, user: User) -> list[uuid.UUID]:
    """The API's transaction: the order and its variants as the user, then the outbox rows (one
    orders.created, three variants.requested) as service_role. Returns the variant ids."""
    async with conn.transaction():
        await conn.execute(_TAKE_ROLE, "authenticated", user.claims, "")
        order = await conn.fetchrow(
            _INSERT_ORDER,
            user.id,
            ORDER["recipient_name"],
            ORDER["occasion"],
            _OCCASION_DATE,
            ORDER["genre"],
            ORDER["mood"],
            ORDER["story"],
            None,
            "0" * 64,
        )
        variants = await conn.fetch(_INSERT_VARIANTS, order["id"], 3)
        await conn.execute(_TAKE_ROLE, "service_role", _SERVICE_CLAIMS, "")
        events = [
            event_payload(
                "orders.created",
                order_id=order["id"],
                user_id=user.id,
                variant_ids=[str(row["id"]) for row in variants],
            ),
            *(
                event_payload(
                    "variants.requested",
                    variant_id=row["id"],
                    order_id=order["id"],
                    variant_number=row["variant_number"],
                    reason="created",
                )
                for row in variants
            ),
        ]
        await conn.execute(
            _INSERT_OUTBOX,
            [uuid.UUID(str(event["event_id"])) for event in events],
            ["serenade." + str(event["type"]) for event in events],
            [orjson.dumps(event).decode() for event in events],
            [orjson.dumps({"Nats-Msg-Id": event["event_id"]}).decode() for event in events],
        )
    return [row["id"] for row in variants]


def post_order_operation(
    conns: Sequence[asyncpg.Connection], users: Sequence[User]
) -> Callable[[int], Awaitable[None]]:
    """The POST /v1/orders transaction, bare: worker ``index`` on ``conns[index]``."""

    async def operation(index: int) -> None:
        await _create_order(conns[index], users[index % len(users)])

    return operation


def get_order_operation(
    conns: Sequence[asyncpg.Connection], orders: Sequence[tuple[User, uuid.UUID]]
) -> Callable[[int], Awaitable[None]]:
    """The GET /v1/orders/{id} read, bare: the order and its variants as the owner."""
    turn = [0] * len(conns)

    async def operation(index: int) -> None:
        user, order_id = orders[(index + turn[index] * len(conns)) % len(orders)]
        turn[index] += 1
        conn = conns[index]
        async with conn.transaction():
            await conn.execute(_TAKE_ROLE, "authenticated", user.claims, "")
            rows = await conn.fetch(_READ_ORDER, order_id)
        if not rows:
            raise LookupError(f"order {order_id} not found")

    return operation


async def pipeline_db_floor(
    dsn: str, users: Sequence[User], *, orders: int, concurrency: int
) -> FloorRun:
    """The pipeline's database work for ``orders`` orders: the order transaction, then per
    variant the two status updates (generating, complete), each its own statement."""
    remaining = orders

    async def worker(conn: asyncpg.Connection, user: User) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            variant_ids = await _create_order(conn, user)
            for variant_id in variant_ids:
                await conn.execute(_START, variant_id)
                await conn.execute(
                    _COMPLETE, variant_id, f"{user.id}/x/variant.wav", "A song", "La la la"
                )

    async with db_connections(dsn, concurrency) as conns:
        started = time.perf_counter()
        await asyncio.gather(
            *(worker(conn, users[index % len(users)]) for index, conn in enumerate(conns))
        )
        return FloorRun(orders, time.perf_counter() - started)


_FLOOR_STREAM = "BENCHFLOOR"


@contextlib.asynccontextmanager
async def _floor_stream(js: JetStreamContext) -> AsyncIterator[None]:
    """A stream of the floor's own (SERENADE's consumers never see its messages)."""
    await js.add_stream(
        StreamConfig(
            name=_FLOOR_STREAM,
            subjects=["benchfloor.>"],
            storage=StorageType.FILE,
            duplicate_window=float(DUPLICATE_WINDOW_SECONDS),
        )
    )
    try:
        yield
    finally:
        await js.delete_stream(_FLOOR_STREAM)


async def nats_pipeline_floor(url: str, *, orders: int, concurrency: int) -> FloorRun:
    """The pipeline's NATS traffic for ``orders`` orders, on a stream of its own: per order
    one orders.created and three variants.requested published with ack; each request pulled,
    answered with two status events (published with ack) and acked; one orders.completed."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        async with _floor_stream(js):
            return await _run_nats_floor(js, orders=orders, concurrency=concurrency)
    finally:
        await nc.close()


async def _run_nats_floor(js: JetStreamContext, *, orders: int, concurrency: int) -> FloorRun:
    await js.add_consumer(
        _FLOOR_STREAM,
        ConsumerConfig(
            durable_name="floor",
            filter_subject="benchfloor.variants.requested",
            ack_policy=AckPolicy.EXPLICIT,
            max_ack_pending=1024,
        ),
    )
    subscription = await js.pull_subscribe_bind("floor", stream=_FLOOR_STREAM)
    handled = 0
    done = asyncio.Event()
    per_order: dict[str, int] = {}
    remaining = orders

    async def publish(subject: str, payload: dict[str, Any]) -> None:
        await js.publish(
            f"benchfloor.{subject}",
            orjson.dumps(payload),
            headers={"Nats-Msg-Id": str(payload["event_id"])},
        )

    async def producer() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            order_id, user_id = uuid.uuid4(), uuid.uuid4()
            variant_ids = [uuid.uuid4() for _ in range(3)]
            await publish(
                "orders.created",
                event_payload(
                    "orders.created",
                    order_id=order_id,
                    user_id=user_id,
                    variant_ids=[str(v) for v in variant_ids],
                ),
            )
            for number, variant_id in enumerate(variant_ids, 1):
                await publish(
                    "variants.requested",
                    event_payload(
                        "variants.requested",
                        variant_id=variant_id,
                        order_id=order_id,
                        variant_number=number,
                        reason="created",
                    ),
                )

    async def handle(msg: Msg) -> None:
        nonlocal handled
        request = orjson.loads(msg.data)
        for status in ("generating", "complete"):
            await publish(
                "variants.status",
                event_payload(
                    "variants.status",
                    variant_id=request["variant_id"],
                    order_id=request["order_id"],
                    user_id=request["order_id"],
                    variant_number=request["variant_number"],
                    status=status,
                    attempts=1,
                    error=None,
                ),
            )
        await msg.ack()
        order_id = request["order_id"]
        per_order[order_id] = per_order.get(order_id, 0) + 1
        if per_order[order_id] == 3:
            await publish(
                "orders.completed",
                event_payload(
                    "orders.completed", order_id=order_id, user_id=order_id, status="complete"
                ),
            )
        handled += 1
        if handled == orders * 3:
            done.set()

    async def consumer() -> None:
        while not done.is_set():
            try:
                messages = await subscription.fetch(concurrency, timeout=0.5)
            except TimeoutError:
                continue
            await asyncio.gather(*(handle(msg) for msg in messages))

    started = time.perf_counter()
    consumers = [asyncio.create_task(consumer()) for _ in range(2)]
    await asyncio.gather(*(producer() for _ in range(concurrency)))
    await done.wait()
    seconds = time.perf_counter() - started
    for task in consumers:
        task.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)
    return FloorRun(orders, seconds)
