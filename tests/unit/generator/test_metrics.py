"""The generator's metrics: provider runs counted and timed by result, deliveries by outcome."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prometheus_client import REGISTRY

from services.generator.metrics import TimedProvider, record_report
from services.generator.providers import InstantProvider, SongRequest
from services.generator.providers.base import GeneratedSong
from services.generator.reports import Outcome, Report

REQUEST = SongRequest(
    order_id=uuid.uuid4(),
    user_id=uuid.uuid4(),
    recipient_name="Ada",
    occasion="birthday",
    genre="pop",
    mood="joyful",
    story=None,
    occasion_date=None,
    variant_number=1,
)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class _Failing:
    async def generate(self, request: SongRequest) -> GeneratedSong:  # noqa: ARG002 - the protocol's
        raise RuntimeError("no song today")


class _Endless:
    async def generate(self, request: SongRequest) -> GeneratedSong:  # noqa: ARG002 - the protocol's
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_each_provider_run_is_counted_and_timed_by_result() -> None:
    def counts() -> dict[str, float]:
        return {
            result: sample("serenade_generator_attempts_total", result=result)
            for result in ("ok", "error", "stopped")
        }

    before = counts()
    timed_before = sample("serenade_generator_generation_duration_seconds_count", result="ok")
    await TimedProvider(InstantProvider()).generate(REQUEST)
    with pytest.raises(RuntimeError):
        await TimedProvider(_Failing()).generate(REQUEST)
    endless = asyncio.ensure_future(TimedProvider(_Endless()).generate(REQUEST))
    await asyncio.sleep(0)
    endless.cancel()
    with pytest.raises(asyncio.CancelledError):
        await endless
    after = counts()
    assert {result: after[result] - before[result] for result in after} == {
        "ok": 1,
        "error": 1,
        "stopped": 1,
    }
    assert (
        sample("serenade_generator_generation_duration_seconds_count", result="ok")
        == timed_before + 1
    )


def test_reports_count_outcomes_and_the_attempts_final_variants_took() -> None:
    failed_before = sample("serenade_generator_variants_total", outcome="failed")
    ignored_before = sample("serenade_generator_variants_total", outcome="ignored")
    sum_before = sample("serenade_generator_final_attempts_sum", outcome="failed")
    record_report(Report(Outcome.FAILED, uuid.uuid4(), uuid.uuid4(), 1, attempt=3))
    record_report(Report(Outcome.IGNORED, uuid.uuid4(), uuid.uuid4(), 1, attempt=2))
    assert sample("serenade_generator_variants_total", outcome="failed") == failed_before + 1
    assert sample("serenade_generator_variants_total", outcome="ignored") == ignored_before + 1
    assert sample("serenade_generator_final_attempts_sum", outcome="failed") == sum_before + 3


def test_every_outcome_is_a_series_from_the_start() -> None:
    for outcome in Outcome:
        assert (
            REGISTRY.get_sample_value(
                "serenade_generator_variants_total", {"outcome": outcome.value}
            )
            is not None
        )
