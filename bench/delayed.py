"""A provider that takes time: one generator with its default settings and every song taking
``SERENADE_PROVIDER_DELAY_MS`` (2 s), as a remote provider's would. The generator is then bound
by how many songs it holds at once, not by its own work per song.

The requests are queued first (orders POSTed while no generator runs, their events published),
then the generator starts, and every variant's ``complete`` status is timed on a core NATS
subscription. Sustained is the rate between the first completion and the last: the first songs
take the delay to come out, after that the generator is in its steady state.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import nats
import orjson
import psutil

from bench.workload import post_orders, wait_outbox_published
from shared.events import SUBJECT_VARIANT_STATUS

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from nats.aio.msg import Msg

    from bench.workload import User

__all__ = ["DELAY_MS", "DelayedRun", "queue_orders", "run_delayed"]

DELAY_MS = 2000
_VARIANTS_PER_ORDER = 3


@dataclass(frozen=True, slots=True)
class DelayedRun:
    delay_ms: int
    variants: int
    completed: int
    # From the generator's start to its last completion, and between first and last completion.
    seconds: float
    steady_seconds: float
    # The generator's own CPU over the phase: what a song costs it, whatever else the machine
    # runs (on a busy machine the rate above falls, this does not).
    generator_cpu_seconds: float

    @property
    def cpu_ms_per_variant(self) -> float:
        return 1000 * self.generator_cpu_seconds / self.completed if self.completed else 0.0

    @property
    def per_second(self) -> float:
        """Sustained variants/s: completions after the first, over the time they took."""
        return (self.completed - 1) / self.steady_seconds if self.steady_seconds > 0 else 0.0

    @property
    def overall_per_second(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0


async def queue_orders(
    api_url: str, dsn: str, users: Sequence[User], *, orders: int, concurrency: int
) -> None:
    """POST ``orders`` orders and wait until the API's relay has published their requests."""
    await post_orders(api_url, users, orders=orders, concurrency=concurrency)
    await wait_outbox_published(dsn)


async def run_delayed(
    nats_url: str,
    start_generator: Callable[[], Awaitable[int]],
    *,
    orders: int,
    timeout: float = 300.0,
) -> DelayedRun:
    """Start the delayed generator on the queued requests and time every completion."""
    variants = orders * _VARIANTS_PER_ORDER
    completions: dict[str, float] = {}
    all_done = asyncio.Event()

    async def on_status(msg: Msg) -> None:
        event = orjson.loads(msg.data)
        if event.get("status") == "complete":
            completions.setdefault(str(event["variant_id"]), time.perf_counter())
            if len(completions) >= variants:
                all_done.set()

    nc = await nats.connect(nats_url)
    try:
        await nc.subscribe(SUBJECT_VARIANT_STATUS, cb=on_status)
        await nc.flush()
        started = time.perf_counter()
        generator = psutil.Process(await start_generator())
        with contextlib.suppress(TimeoutError):  # reported: completed < variants
            await asyncio.wait_for(all_done.wait(), timeout)
        used = generator.cpu_times()
    finally:
        await nc.close()
    times = sorted(completions.values())
    return DelayedRun(
        delay_ms=DELAY_MS,
        variants=variants,
        completed=len(times),
        seconds=(times[-1] - started) if times else 0.0,
        steady_seconds=(times[-1] - times[0]) if len(times) > 1 else 0.0,
        generator_cpu_seconds=used.user + used.system,
    )
