"""Drill 2: ``kill -9`` of nats-server, and a restart, under steady load; the stream on file
storage.

Orders keep being accepted while NATS is away (their events wait in the outbox); every client
reconnects by itself; the stream survives the crash on disk; nothing is lost or doubled.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING, Any

from nats.js.api import StorageType

from services.launcher import wait_until
from shared.events import STREAM_NAME, SUBJECT_VARIANT_REQUESTED
from tests.drills.invariants import check_invariants
from tests.drills.load import LoadDriver
from tests.drills.stack import Stack, StackOptions, running_stack

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.drills.config import DrillSettings


async def _dead_lettered(stack: Stack) -> bool:
    async with stack.admin() as conn:
        found = await conn.fetchval(
            "SELECT count(*) FROM failed_jobs WHERE event_text = 'drill: after the restarts'"
        )
    return bool(found)


async def test_nats_killed_and_restarted_under_load_loses_nothing(
    tmp_path: Path, drills: DrillSettings, report: Callable[[str, dict[str, Any]], str]
) -> None:
    kills = drills.pick(2, 20)
    options = StackOptions(
        ack_wait=2.0, provider_delay_ms=100, provider_failure_rate=0.1, max_attempts=2
    )
    chance = random.Random(2)  # noqa: S311 - the faults' schedule, not a secret
    downtime = 0.0
    async with running_stack(tmp_path, options) as stack:
        info = await stack.js.stream_info(STREAM_NAME)
        assert info.config.storage == StorageType.FILE
        load = LoadDriver(stack.api_url, rate=drills.pick(4.0, 5.0), concurrency=4).start()
        for _ in range(kills):
            await asyncio.sleep(chance.uniform(0.5, 2.0))
            stack.kill_nats()
            down = time.monotonic()
            # The fault lasts a moment to a few seconds.
            await asyncio.sleep(chance.uniform(0.2, 3.0))
            await asyncio.to_thread(stack.start_nats)
            downtime += time.monotonic() - down
        long_outage = drills.nats_outage_seconds or drills.pick(None, 150.0)
        if long_outage:
            # Longer than a client that gives up reconnecting would wait.
            stack.kill_nats()
            await asyncio.sleep(long_outage)
            await asyncio.to_thread(stack.start_nats)
            downtime += long_outage
        await asyncio.sleep(1.0)  # steady load after the last restart too
        await load.stop()
        # Every consumer is back: a message given up by the generator reaches failed_jobs.
        await stack.js.publish(
            SUBJECT_VARIANT_REQUESTED, b"drill: after the restarts", headers={"Nats-Msg-Id": "x1"}
        )
        await wait_until(lambda: _dead_lettered(stack), timeout=60, what="the dead letter stored")
        verdict = await check_invariants(stack, load.accepted, timeout=drills.pick(60, 240))
        alive = all(process.alive() for process in stack.services)
    report(
        "nats-restart",
        {
            "kills": kills,
            **verdict.figures(),
            "5xx": load.server_errors(),
            "non_201": sum(n for s, n in load.statuses().items() if s not in (200, 201)),
            "down_s": round(downtime, 1),
            "long_outage_s": long_outage or 0,
            "gap_s": verdict.gap_s,
            **load.latency_figures(),
        },
    )
    assert verdict.ok, f"{verdict.report()}\n{stack.logs_hint()}"
    assert alive, stack.logs_hint()
    # NATS is not needed to accept an order: every one was answered 201 the first time.
    assert set(load.statuses()) == {201}, load.statuses()
