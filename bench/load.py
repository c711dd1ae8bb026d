"""Load patterns and their figures: a closed loop (N workers, each issuing its next operation as
soon as the last one answered), two closed loops taking turns (serenade and its floor, so that
both see the same machine), and an open loop (operations started on a fixed schedule, latency
counted from the scheduled time, so a slow answer cannot hide the queue behind it)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from bench.stack import CpuMeter

__all__ = ["Latency", "LoadResult", "Run", "closed_loop", "open_loop", "take_turns"]


@dataclass(frozen=True, slots=True)
class Latency:
    """Percentiles of a sample, in milliseconds."""

    p50: float
    p90: float
    p99: float
    max: float
    mean: float
    count: int

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        if not seconds:
            return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0)
        ms = np.asarray(seconds, dtype=float) * 1000.0
        p50, p90, p99 = (float(v) for v in np.percentile(ms, [50, 90, 99]))
        return cls(p50, p90, p99, float(ms.max()), float(ms.mean()), len(ms))


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one load pattern measured."""

    operations: int
    errors: int
    seconds: float
    concurrency: int
    latency: Latency
    first_error: str | None = None

    @property
    def per_second(self) -> float:
        return self.operations / self.seconds if self.seconds else 0.0


@dataclass
class Run:
    """The raw figures of one or more measured windows."""

    concurrency: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, other: Run) -> None:
        self.seconds += other.seconds
        self.latencies += other.latencies
        self.errors += other.errors

    def result(self) -> LoadResult:
        return LoadResult(
            operations=len(self.latencies),
            errors=len(self.errors),
            seconds=self.seconds,
            concurrency=self.concurrency,
            latency=Latency.of(self.latencies),
            first_error=self.errors[0] if self.errors else None,
        )


async def _window(
    operation: Callable[[int], Awaitable[Any]], *, concurrency: int, duration: float
) -> Run:
    """Operations started within ``duration`` s, timed up to the last one's answer."""
    run = Run(concurrency)
    start = time.perf_counter()
    stop = start + duration
    last_end = start

    async def worker(index: int) -> None:
        nonlocal last_end
        while True:
            began = time.perf_counter()
            if began >= stop:
                return
            try:
                await operation(index)
            except Exception as error:  # noqa: BLE001 - counted and reported, never fatal
                run.errors.append(repr(error))
                continue
            ended = time.perf_counter()
            run.latencies.append(ended - began)
            last_end = max(last_end, ended)

    await asyncio.gather(*(worker(index) for index in range(concurrency)))
    run.seconds = last_end - start
    return run


async def closed_loop(
    operation: Callable[[int], Awaitable[Any]],
    *,
    concurrency: int,
    duration: float,
    warmup: float = 1.0,
) -> LoadResult:
    """``concurrency`` workers for ``warmup`` s (not counted), then ``duration`` s."""
    if warmup > 0:
        await _window(operation, concurrency=concurrency, duration=warmup)
    run = await _window(operation, concurrency=concurrency, duration=duration)
    return run.result()


async def take_turns(
    first: tuple[str, Callable[[int], Awaitable[Any]]],
    second: tuple[str, Callable[[int], Awaitable[Any]]],
    *,
    concurrency: int,
    duration: float,
    meter: CpuMeter,
    rounds: int = 4,
    warmup: float = 1.0,
) -> tuple[LoadResult, LoadResult]:
    """Two closed loops at the same concurrency, ``duration`` s each in all, in ``rounds``
    alternating windows: whatever else the machine does meanwhile weighs on both alike."""
    runs = {name: Run(concurrency) for name, _ in (first, second)}
    for _, operation in (first, second):
        await _window(operation, concurrency=concurrency, duration=warmup)
    for _ in range(rounds):
        for name, operation in (first, second):
            with meter.phase(name):
                window = await _window(
                    operation, concurrency=concurrency, duration=duration / rounds
                )
            runs[name].add(window)
    return runs[first[0]].result(), runs[second[0]].result()


async def open_loop(
    operation: Callable[[int], Awaitable[Any]],
    *,
    rate: float,
    duration: float,
    workers: int,
) -> LoadResult:
    """``rate`` operations per second for ``duration`` s on up to ``workers`` connections;
    each latency runs from the operation's scheduled start (queueing included)."""
    run = Run(workers)
    free: asyncio.Queue[int] = asyncio.Queue()
    for index in range(workers):
        free.put_nowait(index)
    total = max(1, round(rate * duration))
    start = time.perf_counter() + 0.05
    tasks: set[asyncio.Task[None]] = set()

    async def one(index: int, scheduled: float) -> None:
        try:
            await operation(index)
            run.latencies.append(time.perf_counter() - scheduled)
        except Exception as error:  # noqa: BLE001 - counted and reported
            run.errors.append(repr(error))
        finally:
            free.put_nowait(index)

    for n in range(total):
        scheduled = start + n / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        index = await free.get()
        task = asyncio.create_task(one(index, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    run.seconds = time.perf_counter() - start
    return run.result()
