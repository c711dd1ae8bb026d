"""The pipeline end to end: N orders created over HTTP by concurrent clients (httpx, in this
process, not the API's), timed from the first POST to the last ``serenade.orders.completed``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import nats
import orjson

from bench.load import Latency
from bench.workload import ORDER_BODY
from shared.events import SUBJECT_ORDER_COMPLETED

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nats.aio.msg import Msg

    from bench.workload import User

__all__ = ["PipelineRun", "run_pipeline"]


@dataclass(frozen=True, slots=True)
class PipelineRun:
    orders: int
    concurrency: int
    generators: int
    seconds: float
    post: Latency
    completion: Latency
    failed: int

    @property
    def per_second(self) -> float:
        return self.orders / self.seconds if self.seconds else 0.0


async def run_pipeline(
    api_url: str,
    nats_url: str,
    users: Sequence[User],
    *,
    orders: int,
    concurrency: int,
    generators: int,
    timeout: float = 300.0,
) -> PipelineRun:
    """Create ``orders`` orders with ``concurrency`` clients and wait until each completed."""
    completed_at: dict[str, float] = {}
    outcome: dict[str, str] = {}
    posted_at: dict[str, float] = {}
    post_seconds: list[float] = []
    waiting: set[str] = set()  # posted, not yet completed
    all_done = asyncio.Event()

    async def on_completed(msg: Msg) -> None:
        event = orjson.loads(msg.data)
        order_id = str(event["order_id"])
        completed_at.setdefault(order_id, time.perf_counter())
        outcome[order_id] = str(event["status"])
        waiting.discard(order_id)
        if len(posted_at) == orders and not waiting:
            all_done.set()

    nc = await nats.connect(nats_url)
    try:
        await nc.subscribe(SUBJECT_ORDER_COMPLETED, cb=on_completed)
        await nc.flush()
        remaining = orders

        async def client(http: httpx.AsyncClient, user: User) -> None:
            nonlocal remaining
            headers = {"Authorization": f"Bearer {user.token}", "Content-Type": "application/json"}
            while remaining > 0:
                remaining -= 1
                began = time.perf_counter()
                response = await http.post("/v1/orders", content=ORDER_BODY, headers=headers)
                ended = time.perf_counter()
                if response.status_code != 201:
                    raise RuntimeError(f"POST /v1/orders: {response.status_code}")
                order_id = str(response.json()["id"])
                posted_at[order_id] = began
                if order_id not in completed_at:
                    waiting.add(order_id)
                post_seconds.append(ended - began)

        # One client and its connections made before the clock starts (making a client is slow).
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=api_url, limits=limits, timeout=30) as http:
            started = time.perf_counter()
            await asyncio.gather(*(client(http, users[i % len(users)]) for i in range(concurrency)))
        if not waiting:
            all_done.set()
        await asyncio.wait_for(all_done.wait(), timeout)
        last = max(completed_at[order_id] for order_id in posted_at)
    finally:
        await nc.close()
    return PipelineRun(
        orders=orders,
        concurrency=concurrency,
        generators=generators,
        seconds=last - started,
        post=Latency.of(post_seconds),
        completion=Latency.of([completed_at[o] - posted_at[o] for o in posted_at]),
        failed=sum(1 for o in posted_at if outcome.get(o) != "complete"),
    )
