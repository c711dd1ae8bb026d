"""Drill 4: PostgreSQL stopped hard (``pg_ctl stop -m immediate``) and restarted under load.

Meanwhile the API answers every request within a few seconds, with 503 problem details and
never a stack trace; it recovers by itself once PostgreSQL is back (on the same port), and so do
the generator and the dead-letter service, without a restart: work that arrived during the
outage, dead letters included, is done afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx

from services.launcher import wait_until
from shared.events import SUBJECT_VARIANT_REQUESTED
from tests.drills.invariants import check_invariants
from tests.drills.load import LoadDriver
from tests.drills.stack import Stack, StackOptions, running_stack

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.drills.config import DrillSettings

# No answer may take longer than this during the outage (the pool waits 5 s for a connection).
_ANSWER_WITHIN = 8.0


async def _probe(stack: Stack, load: LoadDriver, stop: asyncio.Event) -> None:
    """Reads and readiness during the drill, besides the orders: each must answer promptly."""
    headers = {"Authorization": f"Bearer {load.token_of_first_user}"}
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        while not stop.is_set():
            for path, sent in (("/v1/orders", headers), ("/ready", None)):
                await load.exchange(client, "GET", path, headers=sent)
            await asyncio.sleep(0.2)  # the probe's own pace


async def _poison(stack: Stack, text: bytes) -> None:
    await stack.js.publish(
        SUBJECT_VARIANT_REQUESTED, text, headers={"Nats-Msg-Id": str(uuid.uuid4())}
    )


async def _rows_for(stack: Stack, marker: str) -> int:
    async with stack.admin() as conn:
        count = await conn.fetchval(
            "SELECT count(*) FROM failed_jobs WHERE event_text LIKE '%' || $1 || '%'", marker
        )
    return int(count)


async def test_postgres_crash_answers_503_promptly_and_everything_recovers_alone(
    tmp_path: Path, drills: DrillSettings, report: Callable[[str, dict[str, Any]], str]
) -> None:
    crashes = drills.pick(1, 5)
    # Longer than 13 deliveries at the drill's backoff (0.2 s, then 0.5 s).
    outage = drills.pick(8.0, 15.0)
    options = StackOptions(durable_postgres=True, ack_wait=3.0, provider_delay_ms=50)
    recoveries: list[float] = []
    async with running_stack(tmp_path, options) as stack:
        pids = [process.pid for process in stack.services]
        load = LoadDriver(stack.api_url, rate=4.0, concurrency=8, request_timeout=30).start()
        stop_probe = asyncio.Event()
        probe = asyncio.create_task(_probe(stack, load, stop_probe))
        for crash in range(crashes):
            await asyncio.sleep(2.0)  # steady load first
            await asyncio.to_thread(stack.crash_postgres)
            # Work for the generator and the dead-letter service that arrives mid-outage.
            await _poison(stack, f"not json: during outage {crash}".encode())
            await asyncio.sleep(outage)  # the outage
            await asyncio.to_thread(stack.start_postgres)
            back = time.monotonic()

            async def ready() -> bool:
                async with httpx.AsyncClient(base_url=stack.api_url, timeout=5) as client:
                    return (await client.get("/ready")).status_code == 200

            await wait_until(ready, timeout=60, what="the API to be ready again")
            recoveries.append(time.monotonic() - back)
        await _poison(stack, b"not json: after the outage")
        await asyncio.sleep(2.0)  # steady load after the last recovery
        await load.stop()
        stop_probe.set()
        await probe
        verdict = await check_invariants(stack, load.accepted, timeout=drills.pick(60, 180))
        dead_letters = [await _rows_for(stack, f"during outage {n}") for n in range(crashes)]
        dead_letters.append(await _rows_for(stack, "after the outage"))
        restarted = [
            process.pid != pid or not process.alive()
            for process, pid in zip(stack.services, pids, strict=True)
        ]
    statuses = load.statuses()
    slow = [a for a in load.answers if a.seconds > _ANSWER_WITHIN or a.status is None]
    bad_errors = [a for a in load.answers if a.status and a.status >= 400 and not a.problem]
    report(
        "postgres-crash",
        {
            "crashes": crashes,
            "outage_s": outage,
            **verdict.figures(),
            "5xx": load.server_errors(allowed=frozenset({503})),
            "503": statuses.get(503, 0),
            "unanswered": sum(1 for a in load.answers if a.status is None),
            "traces": sum(a.stack_trace for a in load.answers),
            "recover_s": round(max(recoveries), 2),
            "gap_s": verdict.gap_s,
            "max_ms": round(max(a.seconds for a in load.answers) * 1000, 1),
        },
    )
    assert verdict.ok, f"{verdict.report()}\n{stack.logs_hint()}"
    assert statuses.get(503, 0) > 0, statuses  # the outage was seen
    assert set(statuses) <= {200, 201, 503}, statuses
    assert not slow, slow[:5]
    assert not bad_errors, bad_errors[:5]
    assert not any(a.stack_trace for a in load.answers)
    assert load.given_up == 0
    assert not any(restarted), "a service had to be restarted"
    assert dead_letters == [1] * (crashes + 1), dead_letters
