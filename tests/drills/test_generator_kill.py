"""Drill 1: ``kill -9`` of the generator at random moments under steady load.

A killed generator's variants come back to the next process after the ack wait, which takes
them over (a new attempt); whatever it had committed stays, whatever it had not is redone.
Nothing accepted is lost, nothing happens twice, and every failure is dead-lettered.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

from tests.drills.invariants import check_invariants
from tests.drills.load import LoadDriver
from tests.drills.stack import StackOptions, running_stack

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.drills.config import DrillSettings


async def test_generator_killed_at_random_moments_loses_and_doubles_nothing(
    tmp_path: Path, drills: DrillSettings, report: Callable[[str, dict[str, Any]], str]
) -> None:
    kills = drills.pick(3, 100)
    options = StackOptions(
        ack_wait=2.0,
        generator_concurrency=4,
        provider_delay_ms=150,
        # Some attempts fail on purpose, so that retries and dead letters happen under kills too.
        provider_failure_rate=0.15,
        max_attempts=2,
    )
    chance = random.Random(1)  # noqa: S311 - the faults' schedule, not a secret
    async with running_stack(tmp_path, options) as stack:
        load = LoadDriver(stack.api_url, rate=drills.pick(4.0, 5.0), concurrency=4).start()
        for _ in range(kills):
            # The fault: a crash at a random moment, sometimes before the last one was ready.
            await asyncio.sleep(chance.uniform(0.2, 1.5))
            stack.kill_generator()
            if chance.random() < 0.8:
                await stack.start_generator()
            else:
                stack.generators[0].start()
        await load.stop()
        await stack.start_generator() if not stack.generators[0].alive() else None
        verdict = await check_invariants(stack, load.accepted, timeout=drills.pick(60, 240))
    report(
        "generator-kill",
        {
            "kills": kills,
            **verdict.figures(),
            "5xx": load.server_errors(),
            "gap_s": verdict.gap_s,
            **load.latency_figures(),
        },
    )
    assert verdict.ok, f"{verdict.report()}\n{stack.logs_hint()}"
    assert load.server_errors() == 0, load.statuses()
    assert load.given_up == 0
    assert not load.unexpected, load.unexpected[:5]
