"""The API alone under load from this process (the raw client): ``GET /health`` (the HTTP
ceiling), ``POST /v1/orders`` and ``GET /v1/orders/{id}``, each taking turns with its database
floor, and POST latency in an open loop at half the peak POST rate; then POST and GET rates
with one API process and with two (``serenade api --workers 2``), measured alike."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import orjson

from bench.floors import db_connections, get_order_operation, post_order_operation
from bench.load import LoadResult, closed_loop, open_loop, take_turns
from bench.rawhttp import HttpConnection, build_request
from bench.workload import ORDER_BODY

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from bench.stack import CpuMeter
    from bench.workload import User

__all__ = ["ApiRun", "ProcessesRun", "measure_api", "measure_rates", "warm_up"]

POST, POST_FLOOR = "POST /v1/orders", "POST floor (asyncpg)"
GET, GET_FLOOR = "GET /v1/orders/{id}", "GET floor (asyncpg)"


@dataclass(frozen=True, slots=True)
class ApiRun:
    health: LoadResult
    post: LoadResult
    post_floor: LoadResult
    get: LoadResult
    get_floor: LoadResult
    post_half_load: LoadResult
    half_load_rate: float


@dataclass(frozen=True, slots=True)
class ProcessesRun:
    """POST and GET rates of one API process and of two on one port, same clients, same run."""

    post_one: LoadResult
    get_one: LoadResult
    post_two: LoadResult
    get_two: LoadResult


class _Clients:
    """One keep-alive connection per worker, to the API."""

    def __init__(self, api_url: str, count: int) -> None:
        parts = urlsplit(api_url)
        self.host = f"{parts.hostname}:{parts.port}"
        self.connections = [
            HttpConnection(parts.hostname or "127.0.0.1", parts.port or 80) for _ in range(count)
        ]

    def request(
        self, method: str, path: str, user: User | None = None, body: bytes | None = None
    ) -> bytes:
        headers = {"Authorization": f"Bearer {user.token}"} if user else {}
        return build_request(method, path, host=self.host, headers=headers, body=body)

    async def close(self) -> None:
        for connection in self.connections:
            await connection.close()


def _post_operation(
    clients: _Clients, users: Sequence[User], made: list[tuple[User, uuid.UUID]] | None = None
) -> Callable[[int], Awaitable[None]]:
    """POST /v1/orders as worker ``index``'s user; the orders made go to ``made``."""
    count = len(clients.connections)
    owners = [users[index % len(users)] for index in range(count)]
    requests = [clients.request("POST", "/v1/orders", user, ORDER_BODY) for user in owners]

    async def operation(index: int) -> None:
        response = await clients.connections[index].send(requests[index])
        if response.status != 201:
            raise RuntimeError(f"POST /v1/orders: {response.status} {response.body[:200]!r}")
        if made is not None:
            made.append((owners[index], uuid.UUID(orjson.loads(response.body)["id"])))

    return operation


def _get_operation(
    clients: _Clients, orders: Sequence[tuple[User, uuid.UUID]]
) -> Callable[[int], Awaitable[None]]:
    """GET /v1/orders/{id}, each worker going round the orders as their owner."""
    count = len(clients.connections)
    requests = [clients.request("GET", f"/v1/orders/{oid}", user) for user, oid in orders]
    turn = [0] * count

    async def operation(index: int) -> None:
        request = requests[(index + turn[index] * count) % len(requests)]
        turn[index] += 1
        response = await clients.connections[index].send(request)
        if response.status != 200:
            raise RuntimeError(f"GET /v1/orders/{{id}}: {response.status}")

    return operation


async def warm_up(api_url: str, users: Sequence[User], *, concurrency: int) -> None:
    """Two seconds of orders: imports, caches and prepared statements warm before measuring."""
    clients = _Clients(api_url, concurrency)
    try:
        await closed_loop(
            _post_operation(clients, users), concurrency=concurrency, duration=2, warmup=0
        )
    finally:
        await clients.close()


async def measure_api(
    api_url: str,
    dsn: str,
    users: Sequence[User],
    *,
    concurrency: int,
    duration: float,
    meter: CpuMeter,
) -> ApiRun:
    """Each endpoint at ``concurrency`` for ``duration`` s, taking turns with its floor."""
    clients = _Clients(api_url, concurrency * 4)
    serving = _Clients(api_url, concurrency)
    made: list[tuple[User, uuid.UUID]] = []
    try:
        health_request = serving.request("GET", "/health")

        async def health(index: int) -> None:
            response = await serving.connections[index].send(health_request)
            if response.status != 200:
                raise RuntimeError(f"GET /health: {response.status}")

        with meter.phase("GET /health"):
            health_run = await closed_loop(health, concurrency=concurrency, duration=duration)
        async with db_connections(dsn, concurrency) as conns:
            post, post_floor = await take_turns(
                (POST, _post_operation(serving, users, made)),
                (POST_FLOOR, post_order_operation(conns, users)),
                concurrency=concurrency,
                duration=duration,
                meter=meter,
            )
            get, get_floor = await take_turns(
                (GET, _get_operation(serving, made)),
                (GET_FLOOR, get_order_operation(conns, made)),
                concurrency=concurrency,
                duration=duration,
                meter=meter,
            )
        half = post.per_second / 2
        with meter.phase("POST at half peak"):
            post_half = await open_loop(
                _post_operation(clients, users),
                rate=half,
                duration=duration,
                workers=concurrency * 4,
            )
    finally:
        await clients.close()
        await serving.close()
    return ApiRun(health_run, post, post_floor, get, get_floor, post_half, half)


async def measure_rates(
    api_url: str,
    users: Sequence[User],
    *,
    concurrency: int,
    duration: float,
    meter: CpuMeter,
    label: str,
) -> tuple[LoadResult, LoadResult]:
    """POST for ``duration`` s, then GET of the orders it made: closed loops, no floor taking
    turns (the same for one process and two, so that the two compare). Keep-alive connections:
    the kernel gives each to one process when it opens, as a proxy's pool would be spread."""
    serving = _Clients(api_url, concurrency)
    made: list[tuple[User, uuid.UUID]] = []
    try:
        with meter.phase(f"POST, {label}"):
            post = await closed_loop(
                _post_operation(serving, users, made), concurrency=concurrency, duration=duration
            )
        if not made:
            raise RuntimeError(f"no order was made ({label}): {post.first_error}")
        with meter.phase(f"GET, {label}"):
            get = await closed_loop(
                _get_operation(serving, made), concurrency=concurrency, duration=duration
            )
    finally:
        await serving.close()
    return post, get
