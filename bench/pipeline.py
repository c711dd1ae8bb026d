"""The pipeline end to end: N orders created over HTTP by concurrent clients (keep-alive
connections of the minimal client in bench.rawhttp, in this process), timed from the first POST
to the last ``serenade.orders.completed``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import nats
import orjson

from bench.load import Latency
from bench.workload import post_orders
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

    def posted(order_id: str, began: float, ended: float) -> None:
        posted_at[order_id] = began
        if order_id not in completed_at:
            waiting.add(order_id)
        post_seconds.append(ended - began)

    nc = await nats.connect(nats_url)
    try:
        await nc.subscribe(SUBJECT_ORDER_COMPLETED, cb=on_completed)
        await nc.flush()
        started = time.perf_counter()
        await post_orders(api_url, users, orders=orders, concurrency=concurrency, on_posted=posted)
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
