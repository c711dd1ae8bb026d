"""What every measurement sends: the order, the users who send it, and event-shaped payloads of
the size serenade's events have."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
import httpx
import orjson

from services.launcher import wait_until
from shared.auth import issue_token
from shared.db import Role

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "ORDER",
    "ORDER_BODY",
    "User",
    "event_payload",
    "make_users",
    "orders_client",
    "post_orders",
    "wait_outbox_published",
]

# Three variants (the default count), a story of a realistic length.
ORDER = {
    "recipient_name": "Ada Lovelace",
    "occasion": "birthday",
    "occasion_date": "2026-12-10",
    "genre": "pop",
    "mood": "joyful",
    "story": "She wrote the first program for a machine that did not exist yet, "
    "and she still hums while she debugs.",
}
ORDER_BODY = orjson.dumps(ORDER)


@dataclass(frozen=True, slots=True)
class User:
    """An end user and a bearer token for them."""

    id: uuid.UUID
    token: str

    @property
    def claims(self) -> str:
        """The claims as the API takes them (``request.jwt.claims``)."""
        return orjson.dumps(
            {"role": "authenticated", "aud": "authenticated", "sub": str(self.id)}
        ).decode()


def make_users(secret: str, count: int) -> list[User]:
    users = []
    for _ in range(count):
        user_id = uuid.uuid4()
        token = issue_token(secret, role=Role.AUTHENTICATED, user_id=user_id, ttl_seconds=3600)
        users.append(User(user_id, token))
    return users


def event_payload(kind: str, **fields: object) -> dict[str, object]:
    """An event as serenade writes it (ids, type, time, correlation id, fields)."""
    return {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "correlation_id": uuid.uuid4().hex,
        **{key: str(v) if isinstance(v, uuid.UUID) else v for key, v in fields.items()},
    }


def orders_client(api_url: str, concurrency: int) -> httpx.AsyncClient:
    """One HTTP client for ``concurrency`` clients that share it (one connection each)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(base_url=api_url, limits=limits, timeout=30)


async def post_orders(
    http: httpx.AsyncClient,
    users: Sequence[User],
    *,
    orders: int,
    concurrency: int,
    on_posted: Callable[[str, float, float], None] | None = None,
) -> None:
    """POST ``orders`` orders from ``concurrency`` concurrent clients (the users in turn), each
    one reported to ``on_posted(order_id, began, ended)`` (``time.perf_counter`` times)."""
    remaining = orders

    async def client(user: User) -> None:
        nonlocal remaining
        headers = {"Authorization": f"Bearer {user.token}", "Content-Type": "application/json"}
        while remaining > 0:
            remaining -= 1
            began = time.perf_counter()
            response = await http.post("/v1/orders", content=ORDER_BODY, headers=headers)
            ended = time.perf_counter()
            if response.status_code != 201:
                raise RuntimeError(f"POST /v1/orders: {response.status_code}")
            if on_posted is not None:
                on_posted(str(response.json()["id"]), began, ended)

    await asyncio.gather(*(client(users[i % len(users)]) for i in range(concurrency)))


async def wait_outbox_published(dsn: str, *, timeout: float = 120.0) -> None:
    """Wait until the relay has published every outbox row."""
    conn = await asyncpg.connect(dsn)
    try:

        async def published() -> bool:
            unpublished = await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            )
            return not unpublished

        await wait_until(published, timeout=timeout, interval=0.2, what="the outbox published")
    finally:
        await conn.close()
