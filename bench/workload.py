"""What every measurement sends: the order, the users who send it, and event-shaped payloads of
the size serenade's events have."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import asyncpg
import orjson

from bench.rawhttp import HttpConnection, build_request
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


async def post_orders(
    api_url: str,
    users: Sequence[User],
    *,
    orders: int,
    concurrency: int,
    on_posted: Callable[[str, float, float], None] | None = None,
) -> None:
    """POST ``orders`` orders from ``concurrency`` concurrent clients (the users in turn), each
    one reported to ``on_posted(order_id, began, ended)`` (``time.perf_counter`` times).

    Each client is one keep-alive connection of the minimal HTTP/1.1 client the API phase uses
    (``bench.rawhttp``): httpx costs several times more per request, CPU this process would
    take from the two cores that the services and PostgreSQL share."""
    parts = urlsplit(api_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    remaining = orders

    async def client(user: User) -> None:
        nonlocal remaining
        request = build_request(
            "POST",
            "/v1/orders",
            host=f"{host}:{port}",
            headers={"Authorization": f"Bearer {user.token}"},
            body=ORDER_BODY,
        )
        connection = HttpConnection(host, port)
        try:
            while remaining > 0:
                remaining -= 1
                began = time.perf_counter()
                response = await connection.send(request)
                ended = time.perf_counter()
                if response.status != 201:
                    raise RuntimeError(
                        f"POST /v1/orders: {response.status} {response.body[:200]!r}"
                    )
                if on_posted is not None:
                    on_posted(str(orjson.loads(response.body)["id"]), began, ended)
        finally:
            await connection.close()

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
