"""Drill 3: a 3-node NATS cluster on loopback with the stream at 3 replicas; its stream leader
is killed (``kill -9``) under load.

Every order acknowledged (201) is generated and announced: a message JetStream acknowledged is
held by a majority of the nodes, and a new leader is elected among them. The figure is the gap
in processing while the cluster elects. The killed node is restarted and catches up.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from nats.errors import TimeoutError as NatsTimeoutError

from services.deadletter.consumers import ADVISORY_DURABLE, ENVELOPE_DURABLE
from services.generator.consumer import DURABLE as GENERATOR_DURABLE
from services.launcher import wait_until
from shared.events import STREAM_NAME
from shared.stream import ADVISORY_STREAM
from tests.drills.invariants import check_invariants
from tests.drills.load import LoadDriver
from tests.drills.stack import Stack, StackOptions, running_stack

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.drills.config import DrillSettings


CONSUMERS = (
    (STREAM_NAME, GENERATOR_DURABLE),
    (STREAM_NAME, ENVELOPE_DURABLE),
    (ADVISORY_STREAM, ADVISORY_DURABLE),
)


async def _leader(stack: Stack) -> str | None:
    try:
        # A short timeout: while the cluster elects, nobody answers.
        info = await stack.nc.jetstream(timeout=0.5).stream_info(STREAM_NAME)
    except Exception:  # noqa: BLE001 - no leader to answer while it is being elected
        return None
    return info.cluster.leader if info.cluster else None


async def _replicas_current(stack: Stack) -> bool:
    """Both streams and the three durable consumers: a leader and two current replicas."""
    try:
        infos: list[Any] = [await stack.js.stream_info(s) for s in (STREAM_NAME, ADVISORY_STREAM)]
        for stream, durable in CONSUMERS:
            infos.append(await stack.js.consumer_info(stream, durable))
    except NatsTimeoutError:  # a new cluster still electing its leaders answers nothing
        return False
    for info in infos:
        cluster = info.cluster
        if cluster is None or cluster.leader is None or len(cluster.replicas or []) != 2:
            return False
        if not all(replica.current for replica in cluster.replicas or []):
            return False
    return True


async def test_the_stream_leader_killed_under_load_loses_no_acknowledged_order(
    tmp_path: Path, drills: DrillSettings, report: Callable[[str, dict[str, Any]], str]
) -> None:
    kills = drills.pick(1, 5)
    async with running_stack(
        tmp_path, StackOptions(cluster=3, ack_wait=3.0, provider_delay_ms=50)
    ) as stack:
        assert stack.cluster is not None
        info = await stack.js.stream_info(STREAM_NAME)
        assert info.config.num_replicas == 3  # the services left the drill's R3 stream alone
        # ... and their durable consumers took its replicas.
        await wait_until(lambda: _replicas_current(stack), timeout=60, what="R3 consumers")
        elections: list[float] = []
        load = LoadDriver(stack.api_url, rate=drills.pick(3.0, 5.0), concurrency=4).start()
        for _ in range(kills):
            await asyncio.sleep(drills.pick(1.0, 5.0))  # steady load before the fault
            leader = await wait_until(lambda: _leader(stack), timeout=30, what="a stream leader")
            killed = time.monotonic()
            stack.cluster.node(leader).kill()

            async def elected(old: str = leader) -> bool:
                new = await _leader(stack)
                return new is not None and new != old

            await wait_until(elected, timeout=60, what="a new stream leader")
            elections.append(time.monotonic() - killed)
            await asyncio.sleep(drills.pick(1.0, 5.0))  # load on two nodes
            # Back on its port and store; start() waits until it takes client connections.
            await asyncio.to_thread(stack.cluster.node(leader).start)
            await wait_until(lambda: _replicas_current(stack), timeout=60, what="replicas current")
        await load.stop()
        verdict = await check_invariants(stack, load.accepted, timeout=drills.pick(90, 240))
    report(
        "nats-cluster",
        {
            "leader_kills": kills,
            **verdict.figures(),
            "5xx": load.server_errors(),
            "election_s": round(max(elections), 2),
            "gap_s": verdict.gap_s,
            **load.latency_figures(),
        },
    )
    assert verdict.ok, f"{verdict.report()}\n{stack.logs_hint()}"
    assert set(load.statuses()) == {201}, load.statuses()
