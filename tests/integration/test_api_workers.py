"""``serenade api --workers 2`` as a user runs it: both processes answer on the one port,
``/metrics`` on either counts every request of both, each serves an order's live events, a
worker that dies is replaced, and SIGTERM stops them all within a deadline."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import nats
import orjson
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.launcher import ServiceNotReadyError, ServiceProcess, free_port, stop_all
from shared.auth import issue_token
from tests.helpers import wait_for
from tests.integration.api.support import ORDER
from tests.integration.api.test_order_events import (
    Item,
    SseReader,
    completed_event,
    publish,
    status_event,
    summary,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from nats.aio.client import Client as NatsClient

    from shared.settings import Settings
    from tests.conftest import DatabaseFactory

pytestmark = pytest.mark.slow

ORDER_ROUTE = "/v1/orders/{order_id}"
EVENTS_ROUTE = "/v1/orders/{order_id}/events"
# SIGTERM to the supervisor: every process gone within this many seconds.
STOP_DEADLINE = 30.0


class Workers:
    """The supervisor's and the workers' JSON lines, as they come."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def on_line(self, line: str) -> None:
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            return
        if isinstance(entry, dict):
            self.lines.append(entry)

    def started(self) -> dict[str, Any] | None:
        return next((e for e in self.lines if e.get("message") == "API processes started"), None)

    def pids_serving(self, route: str) -> dict[int, int]:
        """Requests answered on ``route``, by the pid of the process that answered."""
        counts: dict[int, int] = {}
        for entry in self.lines:
            if entry.get("message") == "request" and entry.get("route") == route:
                counts[entry["pid"]] = counts.get(entry["pid"], 0) + 1
        return counts


def fresh_connections() -> httpx.AsyncClient:
    """A client that opens a connection per request, so that the kernel may hand each to
    another process (a kept-alive connection stays with the process that accepted it)."""
    return httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_keepalive_connections=0))


def counted(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def exists(path: Path) -> bool:
    return path.exists()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_two_api_processes_share_the_port_the_metrics_the_events_and_stop_together(
    settings_factory: Callable[..., Settings], make_database: DatabaseFactory, tmp_path: Path
) -> None:
    port = free_port()
    # A database of its own: the relay's leader lock is per database, and an app of another
    # test in this session may hold the shared one's, leaving neither process leading.
    settings = settings_factory(api_port=port, database_url=await make_database())
    url = f"http://127.0.0.1:{port}"
    token = issue_token(settings.require_jwt_secret(), user_id=uuid.uuid4())
    headers = {"Authorization": f"Bearer {token}"}
    log = Workers()
    api = ServiceProcess(["api", "--workers", "2"], settings, on_line=log.on_line)
    api.start()
    try:
        await api.wait_ready(timeout=60)
        started = await wait_for(log.started, timeout=10, what="the supervisor's start line")
        first_pids = set(started["pids"])
        metrics_dir = Path(started["metrics_dir"])
        assert len(first_pids) == 2
        assert api.pid not in first_pids

        async with fresh_connections() as http:
            created = await http.post(f"{url}/v1/orders", json=ORDER, headers=headers)
            assert created.status_code == 201, created.text
            order = created.json()

            # Requests until both processes have answered some (bounded).
            sent = 0
            while len(log.pids_serving(ORDER_ROUTE)) < 2:
                assert sent < 2000, (
                    f"one process answered all {sent}: {log.pids_serving(ORDER_ROUTE)}"
                )
                answers = await asyncio.gather(
                    *(
                        http.get(f"{url}/v1/orders/{order['id']}", headers=headers)
                        for _ in range(20)
                    )
                )
                assert [answer.status_code for answer in answers] == [200] * 20
                sent += 20
                await wait_for(
                    lambda: sum(log.pids_serving(ORDER_ROUTE).values()) == sent,  # noqa: B023
                    timeout=10,
                    what="every access line",
                )
            assert set(log.pids_serving(ORDER_ROUTE)) == first_pids

            # Any process's /metrics counts every process's requests; the relay leads in one.
            async def metrics_agree() -> bool:
                scrapes = [(await http.get(f"{url}/metrics")).text for _ in range(6)]
                return all(
                    counted(
                        text,
                        "serenade_http_requests_total",
                        method="GET",
                        route=ORDER_ROUTE,
                        status="200",
                    )
                    == sent
                    and counted(text, "serenade_outbox_relay_leader") == 1
                    for text in scrapes
                )

            await wait_for(metrics_agree, timeout=20, what=f"/metrics to count {sent} GETs")

            # Each process serves live events: streams on fresh connections until both have.
            nc = await nats.connect(settings.require_nats_servers())
            try:
                rounds = 0
                while len(log.pids_serving(EVENTS_ROUTE)) < 2:
                    rounds += 1
                    assert rounds <= 20, f"streams served by {log.pids_serving(EVENTS_ROUTE)} only"
                    await stream_an_order(http, nc, url, headers)
            finally:
                await nc.close()
            assert set(log.pids_serving(EVENTS_ROUTE)) == first_pids

            # A worker that dies is replaced; the port answers throughout; counts still add up.
            victim = sorted(first_pids)[0]
            os.kill(victim, signal.SIGKILL)

            def replaced() -> set[int] | None:
                for entry in log.lines:
                    if entry.get("message") == "an API process died; starting another":
                        assert entry["pid"] == victim
                        return {entry["new_pid"]}
                return None

            new_pids = await wait_for(replaced, timeout=20, what="a replacement process")
            answer = await http.get(f"{url}/v1/orders/{order['id']}", headers=headers)
            assert answer.status_code == 200
            sent += 1

            async def ready_again() -> bool:
                return (await http.get(f"{url}/ready")).status_code == 200

            await wait_for(ready_again, timeout=30, what="the API to answer after the crash")

            async def still_adds_up() -> bool:
                text = (await http.get(f"{url}/metrics")).text
                return (
                    counted(
                        text,
                        "serenade_http_requests_total",
                        method="GET",
                        route=ORDER_ROUTE,
                        status="200",
                    )
                    == sent
                )

            await wait_for(still_adds_up, timeout=20, what="the count to include the dead process")
        workers = (first_pids - {victim}) | new_pids
        assert exists(metrics_dir)
    finally:
        began = time.monotonic()
        code = api.terminate(timeout=STOP_DEADLINE + 10)
        took = time.monotonic() - began

    assert code == 0, api.tail()
    assert took < STOP_DEADLINE
    stopped = next(e for e in log.lines if e.get("message") == "API processes stopped")
    assert stopped["seconds"] < STOP_DEADLINE
    # Each worker shut down as one `serenade api` does (uvicorn ends it with the signal again).
    assert set(stopped["exit_codes"]) <= {0, -signal.SIGTERM}
    assert all(gone(pid) for pid in workers)
    assert not exists(metrics_dir)


async def stream_an_order(
    http: httpx.AsyncClient, nc: NatsClient, url: str, headers: dict[str, str]
) -> None:
    """A new order watched by four streams at once: each gets its state, every change and the
    order's end, and ends."""
    created = await http.post(f"{url}/v1/orders", json=ORDER, headers=headers)
    assert created.status_code == 201, created.text
    order = created.json()
    changes = [status_event(order, number, "complete", 1) for number in (1, 2, 3)]
    expected = [(n, "complete", 1) for n in (1, 2, 3)] + [("order", "complete")]

    async def watch(ready: asyncio.Event, count: list[int]) -> list[tuple[Any, ...]]:
        path = f"{url}/v1/orders/{order['id']}/events"
        async with http.stream("GET", path, headers=headers) as response:
            assert response.status_code == 200
            stream = SseReader(response)
            first = await stream.events(3)
            assert [summary(item) for item in first] == [(n, "pending", 0) for n in (1, 2, 3)]
            count[0] += 1
            if count[0] == 4:
                ready.set()
            rest = await stream.events(4, timeout=15)
            assert await stream.next_event() is None
            return [summary(item) for item in rest]

    ready = asyncio.Event()
    count = [0]
    watchers = [asyncio.create_task(watch(ready, count)) for _ in range(4)]
    await asyncio.wait_for(ready.wait(), 15)
    await publish(nc, *changes, completed_event(order, "complete"))
    assert await asyncio.gather(*watchers) == [expected] * 4


async def test_a_setting_missing_stops_the_command_with_its_name_before_any_process_starts(
    settings_factory: Callable[..., Settings],
) -> None:
    log = Workers()
    api = ServiceProcess(
        ["api", "--workers", "2"], settings_factory(jwt_secret=None), on_line=log.on_line
    )
    try:
        with pytest.raises(ServiceNotReadyError) as raised:
            await api.start().wait_ready(timeout=60)
    finally:
        stop_all([api], grace=10)

    assert "SERENADE_JWT_SECRET" in str(raised.value)
    assert api.process is not None
    assert api.process.returncode != 0
    assert log.started() is None


async def test_processes_that_cannot_start_stop_the_supervisor_instead_of_restarting_for_ever(
    settings_factory: Callable[..., Settings],
) -> None:
    log = Workers()
    settings = settings_factory(api_port=free_port(), storage_url="ftp://nowhere/songs")
    api = ServiceProcess(["api", "--workers", "2"], settings, on_line=log.on_line)
    try:
        with pytest.raises(ServiceNotReadyError) as raised:
            await api.start().wait_ready(timeout=60)
    finally:
        stop_all([api], grace=40)

    assert "unsupported storage URL" in str(raised.value)
    assert api.process is not None
    assert api.process.returncode == 1
    started = log.started()
    assert started is not None
    assert all(gone(pid) for pid in started["pids"])
    assert not exists(Path(started["metrics_dir"]))
    assert not any(e.get("message") == "an API process died; starting another" for e in log.lines)


async def test_one_worker_is_the_one_plain_process_as_before(
    settings_factory: Callable[..., Settings],
) -> None:
    port = free_port()
    log = Workers()
    api = ServiceProcess(["api"], settings_factory(api_port=port), on_line=log.on_line)
    try:
        await api.start().wait_ready(timeout=60)
        async with fresh_connections() as http:
            metrics = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        process = psutil.Process(api.pid)
        children = process.children(recursive=True)
        environment = process.environ()
    finally:
        code = api.terminate(timeout=STOP_DEADLINE)

    # uvicorn ends a process stopped by a signal with that signal again, once it has shut down.
    assert code in (0, -signal.SIGTERM)
    assert children == []
    assert "PROMETHEUS_MULTIPROC_DIR" not in environment
    assert log.started() is None
    assert counted(metrics, "serenade_http_requests_total", route="/ready", status="200") >= 1
    assert not any("worker" in entry for entry in log.lines)


async def test_sigterm_ends_open_event_streams_of_every_process_and_stops_at_once(
    settings_factory: Callable[..., Settings],
) -> None:
    port = free_port()
    settings = settings_factory(api_port=port)
    url = f"http://127.0.0.1:{port}"
    token = issue_token(settings.require_jwt_secret(), user_id=uuid.uuid4())
    headers = {"Authorization": f"Bearer {token}"}
    log = Workers()
    api = ServiceProcess(["api", "--workers", "2"], settings, on_line=log.on_line)
    try:
        await api.start().wait_ready(timeout=60)
        async with fresh_connections() as http:
            created = await http.post(f"{url}/v1/orders", json=ORDER, headers=headers)
            assert created.status_code == 201, created.text
            path = f"{url}/v1/orders/{created.json()['id']}/events"
            opened = asyncio.Event()
            watching = [0]

            async def watch() -> Item | None:
                async with http.stream("GET", path, headers=headers) as response:
                    assert response.status_code == 200
                    stream = SseReader(response)
                    await stream.events(3)
                    watching[0] += 1
                    if watching[0] == 6:
                        opened.set()
                    return await stream.next_event(timeout=STOP_DEADLINE)

            watchers = [asyncio.create_task(watch()) for _ in range(6)]
            await asyncio.wait_for(opened.wait(), 20)
            began = time.monotonic()
            code = await asyncio.to_thread(api.terminate, STOP_DEADLINE + 10)
            took = time.monotonic() - began
            ends = await asyncio.gather(*watchers)
    finally:
        stop_all([api], grace=10)

    assert code == 0, api.tail()
    # Streams were ended first: no wait for the 10 s uvicorn gives open responses.
    assert took < 5.0
    assert ends == [None] * 6
    served = {e["pid"] for e in log.lines if e.get("route") == EVENTS_ROUTE}
    started = log.started()
    assert started is not None
    assert served <= set(started["pids"])
