"""Prometheus metrics of the generator (default registry, served by ``shared.telemetry``):
variants by outcome, generation attempts, how long generation takes, variants in flight, and the
intake's pulls (how many, how many requests each brought).

The intake pulls with nats-py, not through a FastStream handler (``intake.py``), so FastStream's
middleware would count nothing here: the numbers are taken where the work happens.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Generic, TypeVar

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from .providers.base import concurrency_limit
from .reports import Outcome

if TYPE_CHECKING:
    from .providers.base import GeneratedSong, SongProvider, SongRequest
    from .reports import Report

__all__ = [
    "ATTEMPTS",
    "FINAL_ATTEMPTS",
    "GENERATION_SECONDS",
    "IN_FLIGHT",
    "PULLS",
    "PULLS_BY_RESULT",
    "PULL_SIZE",
    "VARIANTS",
    "Children",
    "TimedProvider",
    "record_report",
]

VARIANTS = Counter(
    "serenade_generator_variants",
    "Deliveries of serenade.variants.requested handled, by outcome (complete, retry, failed, "
    "ignored, dead_lettered, handed_back, superseded, requeued).",
    ["outcome"],
)
ATTEMPTS = Counter(
    "serenade_generator_attempts",
    "Generation attempts (provider runs), by result: ok, error, or stopped (timed out or "
    "abandoned at shutdown).",
    ["result"],
)
GENERATION_SECONDS = Histogram(
    "serenade_generator_generation_duration_seconds",
    "Time one provider run took, by result.",
    ["result"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
FINAL_ATTEMPTS = Histogram(
    "serenade_generator_final_attempts",
    "Attempts a variant took when it became final, by outcome (complete or failed).",
    ["outcome"],
    buckets=(1, 2, 3, 4, 5, 7, 10, 20),
)
IN_FLIGHT = Gauge(
    "serenade_generator_in_flight",
    "Deliveries this process is working on now (at most SERENADE_GENERATOR_CONCURRENCY, or "
    "the provider's own limit when lower).",
)
PULLS = Counter(
    "serenade_generator_pulls",
    "Pulls from the generator's consumer, by result: messages, empty (routine when idle), or "
    "error (NATS away or refusing; the intake backs off and pulls again).",
    ["result"],
)
PULL_SIZE = Histogram(
    "serenade_generator_pull_size",
    "Requests one pull brought (pulls that brought any); never more than the free slots.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
_FINAL_OUTCOMES = frozenset({"complete", "failed"})
Metric = TypeVar("Metric", bound=MetricWrapperBase)


class Children(Generic[Metric]):
    """A metric's child per label value, looked up once: ``labels()`` takes a lock and builds
    its key on every call, and these are counted for every variant. A child appears in the
    output when first used, as through ``labels()``."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: Metric) -> None:
        self._metric = metric
        self._children: dict[str, Metric] = {}

    def __call__(self, value: str) -> Metric:
        child = self._children.get(value)
        if child is None:
            child = self._children[value] = self._metric.labels(value)
        return child


_VARIANTS = Children(VARIANTS)
_FINAL_ATTEMPTS = Children(FINAL_ATTEMPTS)
_ATTEMPTS = Children(ATTEMPTS)
_GENERATION_SECONDS = Children(GENERATION_SECONDS)
PULLS_BY_RESULT = Children(PULLS)
# Every series exists from the start (at 0), so a rate() sees the first one.
for _outcome in Outcome:
    VARIANTS.labels(_outcome.value)
for _result in ("ok", "error", "stopped"):
    ATTEMPTS.labels(_result)
for _result in ("messages", "empty", "error"):
    PULLS.labels(_result)


def record_report(report: Report) -> None:
    """Count one handled delivery."""
    outcome = report.outcome.value
    _VARIANTS(outcome).inc()
    if outcome in _FINAL_OUTCOMES and report.attempt is not None:
        _FINAL_ATTEMPTS(outcome).observe(report.attempt)


class TimedProvider:
    """A provider that counts and times each run of the provider it wraps."""

    def __init__(self, inner: SongProvider) -> None:
        self.inner = inner

    @property
    def max_concurrency(self) -> int | None:
        return concurrency_limit(self.inner)

    async def generate(self, request: SongRequest) -> GeneratedSong:
        started = time.perf_counter()
        result = "error"
        try:
            song = await self.inner.generate(request)
            result = "ok"
        except asyncio.CancelledError:
            result = "stopped"
            raise
        finally:
            _ATTEMPTS(result).inc()
            _GENERATION_SECONDS(result).observe(time.perf_counter() - started)
        return song
