"""Prometheus metrics: requests by route and status, latency histograms, the outbox backlog.

Each app has a registry of its own (tests build several apps in one process); the middleware
labels requests with the route template, never the raw path, so ids do not explode the series.

With several API processes (``serenade api --workers N``) every process writes its values to
files in one directory (prometheus_client's multiprocess mode, switched on by the supervisor in
``services.api.workers``), and a scrape of any process reads them all: counters and histograms
add up over every process that ever ran; each gauge says how its processes' values combine.
"""

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from shared.outbox import OutboxRelay

__all__ = ["ApiMetrics", "MetricsMiddleware", "keep_relay_gauges"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    """``multiprocess_dir``: the directory every API process of this run writes its values to
    (None: one process, values in memory)."""

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "serenade_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "serenade_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Their ratio is the mean group size: how many writes each commit carried.
        self.group_commits = Counter(
            "serenade_api_group_commits",
            "Transactions that committed a group of writes arriving together, by kind"
            " (create, upsell, retry).",
            ["kind"],
            registry=self.registry,
        )
        self.group_items = Counter(
            "serenade_api_group_items",
            "Writes committed in those groups, by kind (the rest were written alone).",
            ["kind"],
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "serenade_outbox_backlog",
            "Events written to the outbox and not yet published (-1: unknown).",
            registry=self.registry,
            # Counted by the process that answers the scrape, just now: its value is the one.
            multiprocess_mode="mostrecent",
        )
        self.outbox_published = Gauge(
            "serenade_outbox_published",
            "Events the API's relay has published since the API started.",
            registry=self.registry,
            # Each process's own count; a process that stopped keeps what it published.
            multiprocess_mode="sum",
        )
        self.relay_leader = Gauge(
            "serenade_outbox_relay_leader",
            "1 while a relay of the API holds the leader lock (one process of all at most).",
            registry=self.registry,
            # A process that died holds no lock: only the living count.
            multiprocess_mode="livesum",
        )

    def record_group(self, kind: str, size: int) -> None:
        """A group of ``size`` writes of ``kind`` committed."""
        self.group_commits.labels(kind).inc()
        self.group_items.labels(kind).inc(size)

    @property
    def multiprocess(self) -> bool:
        return self.multiprocess_dir is not None

    def record_relay(self, relay: OutboxRelay | None) -> None:
        """This process's relay as the gauges show it."""
        self.outbox_published.set(relay.published_total if relay else 0)
        self.relay_leader.set(1 if relay is not None and relay.is_leader else 0)

    def render(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        # Every process's files, read afresh at each scrape (the collector keeps nothing).
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(merged)


async def keep_relay_gauges(
    metrics: ApiMetrics, relay: Callable[[], OutboxRelay | None], interval: float = 1.0
) -> None:
    """With several processes: write this process's relay gauges every ``interval`` seconds, so
    that a scrape answered by another process sees them (a scrape sets only its own process's)."""
    while True:
        metrics.record_relay(relay())
        await asyncio.sleep(interval)


class MetricsMiddleware:
    """Counts and times every HTTP request that reached a route."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = str(scope.get("path_template") or "unmatched")
            method = str(scope.get("method", "GET"))
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
