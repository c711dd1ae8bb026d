"""Drill 9: soak. Steady load at half the measured peak rate (full: 30 minutes; short: about
half a minute): every service's memory stays flat (RSS at start and end), PostgreSQL
connections do not grow, latency percentiles hold steady (first third against last third), and
the invariants hold at the end.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from tests.drills.invariants import check_invariants, settle
from tests.drills.load import LoadDriver, percentile
from tests.drills.stack import StackOptions, running_stack

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.drills.config import DrillSettings

_MB = 1024 * 1024


def _grew(start: dict[str, int], end: dict[str, int]) -> dict[str, float]:
    return {name: round((end[name] - start[name]) / _MB, 1) for name in start if name in end}


async def test_steady_load_keeps_memory_connections_and_latency_flat(
    tmp_path: Path, drills: DrillSettings, report: Callable[[str, dict[str, Any]], str]
) -> None:
    duration = drills.soak_seconds or drills.pick(30.0, 1800.0)
    samples: list[tuple[float, int]] = []
    async with running_stack(tmp_path, StackOptions(provider_delay_ms=20)) as stack:
        # The peak, end to end: orders placed as fast as eight clients can for a few seconds,
        # over the time until every one is generated and announced. (The API alone accepts
        # orders faster than one generator makes their variants: at half the API's rate the
        # backlog would only grow.)
        probe_started = time.monotonic()
        probe = LoadDriver(stack.api_url, users=20, concurrency=8, seed=90).start()
        await asyncio.sleep(drills.pick(4.0, 30.0))  # the probe's length
        await probe.stop()
        settled, _, _ = await settle(stack, timeout=drills.pick(120, 600))
        assert settled, "the stack did not catch up after the peak probe"
        peak = len(probe.accepted) / (time.monotonic() - probe_started)
        rss_start = stack.rss()
        # The pools' high-water mark, reached at the peak: pools grow on demand up to their
        # maximum, and only a leak would take the count past it.
        at_peak = await stack.connections()
        load = LoadDriver(stack.api_url, users=50, concurrency=8, rate=peak / 2, seed=91).start()
        every = duration / 10
        for _ in range(10):
            await asyncio.sleep(every)  # the soak itself, sampled ten times
            samples.append((load.elapsed, await stack.connections()))
        await load.stop()
        rss_end = stack.rss()
        verdict = await check_invariants(
            stack, probe.accepted | load.accepted, timeout=drills.pick(60, 300)
        )
    third = load.elapsed / 3
    first = load.latencies_ms(0, third)
    last = load.latencies_ms(2 * third)
    grew = _grew(rss_start, rss_end)
    # Thirds of the sampled span, not of the load's: stopping the load can take a while on a
    # busy machine, which would leave the last third of the load's time without a sample.
    sampled_until = samples[-1][0]
    connections_first = max(count for at, count in samples if at <= sampled_until / 3 + every)
    connections_last = max(count for at, count in samples if at >= 2 * sampled_until / 3)
    connections_before = max(
        [at_peak, *(count for at, count in samples if at < 2 * sampled_until / 3)]
    )
    report(
        "soak",
        {
            "seconds": round(load.elapsed),
            "peak_per_s": round(peak, 1),
            "rate_per_s": round(peak / 2, 1),
            **verdict.figures(),
            "5xx": load.server_errors(),
            "rss_mb": "/".join(f"{name}:{rss_start[name] / _MB:.0f}+{grew[name]}" for name in grew),
            "pg_conns": f"{connections_first}->{connections_last}",
            "p50_ms": f"{percentile(first, 0.5):.0f}->{percentile(last, 0.5):.0f}",
            "p99_ms": f"{percentile(first, 0.99):.0f}->{percentile(last, 0.99):.0f}",
        },
    )
    assert verdict.ok, f"{verdict.report()}\n{stack.logs_hint()}"
    assert load.server_errors() == 0, load.statuses()
    # Flat: a leak of a few KB per request would show as tens of MB over the run.
    for name, megabytes in grew.items():
        assert megabytes < max(30.0, rss_start[name] / _MB * 0.3), (name, grew)
    assert connections_last <= connections_before + 2, (at_peak, samples)
    # Steady: a growing queue would show as seconds; a busy machine's noise as milliseconds.
    assert percentile(last, 0.5) <= 2 * percentile(first, 0.5) + 50, (first, last)
    assert percentile(last, 0.99) <= 3 * percentile(first, 0.99) + 250
