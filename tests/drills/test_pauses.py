"""Drill 5: pauses. ``SIGSTOP`` a generator, nats-server or PostgreSQL for longer than the ack
wait, then ``SIGCONT``, under steady load.

A paused generator's work is taken over by the other once the ack wait passes; when it wakes, its
late attempt finds the variant taken over and changes nothing. A paused nats-server or
PostgreSQL stalls everyone, and on waking every redelivery finds its work done or in hand.
No effect happens twice; nothing is lost. While PostgreSQL is frozen the API answers 503 problem
details after its command timeout (a frozen server is an unreachable one), never later.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from tests.drills.invariants import check_invariants
from tests.drills.load import LoadDriver
from tests.drills.stack import StackOptions, running_stack

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.drills.config import DrillSettings
    from tests.drills.stack import Stack

ACK_WAIT = 2.0
# The API's command timeout (10 s) and some slack: no answer may take longer, however long the
# pause.
_ANSWER_WITHIN = 12.0


def _pause(stack: Stack, target: str) -> None:
    if target == "generator":
        stack.generators[0].pause()
    elif target == "nats-server":
        assert stack.nats_server is not None
        stack.nats_server.pause()
    else:
        stack.postgres.pause()


def _resume(stack: Stack, target: str) -> None:
    if target == "generator":
        stack.generators[0].resume()
    elif target == "nats-server":
        assert stack.nats_server is not None
        stack.nats_server.resume()
    else:
        stack.postgres.resume()


async def test_pauses_longer_than_the_ack_wait_double_and_lose_nothing(
    tmp_path: Path, drills: DrillSettings, report: Callable[[str, dict[str, Any]], str]
) -> None:
    rounds = drills.pick(1, 5)
    pause = drills.pick(2.5 * ACK_WAIT, 10 * ACK_WAIT)
    targets = ("generator", "nats-server", "postgres")
    options = StackOptions(
        generators=2, ack_wait=ACK_WAIT, generator_concurrency=4, provider_delay_ms=300
    )
    async with running_stack(tmp_path, options) as stack:
        load = LoadDriver(
            stack.api_url, rate=drills.pick(4.0, 4.0), concurrency=8, request_timeout=30
        ).start()
        for _ in range(rounds):
            for target in targets:
                await asyncio.sleep(1.5)  # steady load, work in flight
                _pause(stack, target)
                try:
                    await asyncio.sleep(pause)  # the fault: a process frozen
                finally:
                    _resume(stack, target)
        await asyncio.sleep(1.5)
        await load.stop()
        verdict = await check_invariants(stack, load.accepted, timeout=drills.pick(60, 180))
        alive = all(process.alive() for process in stack.services)
    report(
        "pauses",
        {
            "pauses": rounds * len(targets),
            "pause_s": pause,
            "ack_wait_s": ACK_WAIT,
            **verdict.figures(),
            "5xx": load.server_errors(allowed=frozenset({503})),
            "503": load.statuses().get(503, 0),
            "gap_s": verdict.gap_s,
            **load.latency_figures(),
        },
    )
    assert verdict.ok, f"{verdict.report()}\n{stack.logs_hint()}"
    assert alive, stack.logs_hint()
    assert load.server_errors(allowed=frozenset({503})) == 0, load.statuses()
    assert all(a.problem for a in load.answers if a.status == 503)
    assert not any(a.stack_trace for a in load.answers)
    assert max(a.seconds for a in load.answers) < _ANSWER_WITHIN
    assert load.given_up == 0
