"""The pipeline end to end: N orders created over HTTP by concurrent clients (keep-alive
connections of the minimal client in bench.rawhttp, in this process), timed from the first POST
to the last ``serenade.orders.completed``. A run may be made of rounds (``pipeline_round``), so
that serenade and its floor take turns and both see the same machine (``PipelineRun.of``)."""

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

__all__ = ["PipelineRound", "PipelineRun", "pipeline_round", "run_pipeline"]


@dataclass(frozen=True, slots=True)
class PipelineRun:
    orders: int
    concurrency: int
    generators: int
    seconds: float
    post: Latency
    completion: Latency
    failed: int
    # Rounds it was made of (taking turns with the floor).
    rounds: int = 1

    @property
    def per_second(self) -> float:
        return self.orders / self.seconds if self.seconds else 0.0

    @classmethod
    def of(
        cls, rounds: Sequence[PipelineRound], *, concurrency: int, generators: int
    ) -> PipelineRun:
        """One run of ``rounds``: their orders over their seconds, their latencies pooled."""
        return cls(
            orders=sum(len(each.post_seconds) for each in rounds),
            concurrency=concurrency,
            generators=generators,
            seconds=sum(each.seconds for each in rounds),
            post=Latency.of([value for each in rounds for value in each.post_seconds]),
            completion=Latency.of([value for each in rounds for value in each.completion_seconds]),
            failed=sum(each.failed for each in rounds),
            rounds=len(rounds),
        )


@dataclass(frozen=True, slots=True)
class PipelineRound:
    """One round's raw figures: seconds from the first POST to the last completion, and each
    order's POST and POST-to-completed seconds."""

    seconds: float
    post_seconds: list[float]
    completion_seconds: list[float]
    failed: int


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
    one = await pipeline_round(
        api_url, nats_url, users, orders=orders, concurrency=concurrency, timeout=timeout
    )
    return PipelineRun.of([one], concurrency=concurrency, generators=generators)


async def pipeline_round(
    api_url: str,
    nats_url: str,
    users: Sequence[User],
    *,
    orders: int,
    concurrency: int,
    timeout: float = 300.0,
) -> PipelineRound:
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
    return PipelineRound(
        seconds=last - started,
        post_seconds=post_seconds,
        completion_seconds=[completed_at[o] - posted_at[o] for o in posted_at],
        failed=sum(1 for o in posted_at if outcome.get(o) != "complete"),
    )
