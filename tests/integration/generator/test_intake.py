"""The intake: requests pulled in batches never larger than the free slots, a lone request at
an idle generator taken at once (no pull timeout waited out), and an idle generator's empty
pulls routine (no error, no traceback)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY

from services.generator.consumer import DURABLE
from shared.events import STREAM_NAME
from tests.helpers import wait_for

from .support import (
    all_final,
    all_requests_settled,
    publish_request,
    request_all,
    running_generator,
    seed_order,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import pytest

    from .conftest import GeneratorEnv
    from .support import SeededOrder


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _pull_waiting(env: GeneratorEnv) -> bool:
    """The generator has a pull request waiting on the server: it is idle and listening."""
    info = await env.js.consumer_info(STREAM_NAME, DURABLE)
    return bool(info.num_waiting)


async def test_a_burst_is_pulled_in_batches_no_larger_than_the_free_slots(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    settings = env.with_settings(generator_concurrency=4, provider_delay_ms=300)
    orders = [await seed_order(env.pool) for _ in range(8)]  # 24 requests queued at once
    for order in orders:
        await request_all(env.js, order)
    batches_before = _sample("serenade_generator_pull_size_count")
    singles_before = _sample("serenade_generator_pull_size_bucket", le="1.0")

    async with running_generator(settings):
        # What the server handed out and has not had settled: never more than the slots.
        held: list[int] = []

        async def every_order_final() -> bool:
            info = await env.js.consumer_info(STREAM_NAME, DURABLE)
            held.append(info.num_ack_pending)
            return all([await all_final(env.pool, order.order_id) for order in orders])

        await wait_for(every_order_final, timeout=60, interval=0.02, what="every variant final")
        await wait_for(lambda: all_requests_settled(env.js), what="every request acked")

    assert max(held) <= 4
    assert max(held) == 4  # the slots were all used
    for order in orders:
        rows = await all_final(env.pool, order.order_id)
        assert rows is not None
        assert [row.status.value for row in rows] == ["complete"] * 3
        assert [row.attempts for row in rows] == [1, 1, 1]
    # Pulls of more than one request happened (a single message per pull would be all "1").
    batches = _sample("serenade_generator_pull_size_count") - batches_before
    singles = _sample("serenade_generator_pull_size_bucket", le="1.0") - singles_before
    assert batches > singles


def _final(env: GeneratorEnv, order: SeededOrder) -> Callable[[], Awaitable[object]]:
    async def final() -> object:
        return await all_final(env.pool, order.order_id)

    return final


async def test_a_lone_request_at_an_idle_generator_is_taken_at_once(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    fetch_timeout = 20.0  # a request waiting for a pull to time out would show
    settings = env.with_settings(nats_fetch_timeout=fetch_timeout)
    first, second = await seed_order(env.pool, variants=1), await seed_order(env.pool, variants=1)

    async with running_generator(settings):
        for order in (first, second):  # the second after the first one's busy pulls are over
            await wait_for(lambda: _pull_waiting(env), what="an idle generator's pull")
            started = time.monotonic()
            await publish_request(env.js, order.variant_ids[0], order.order_id, 1)
            await wait_for(
                _final(env, order), timeout=fetch_timeout / 2, interval=0.01, what="final"
            )
            took = time.monotonic() - started
            rows = await all_final(env.pool, order.order_id)
            assert rows is not None
            assert [row.status.value for row in rows] == ["complete"]
            assert took < 2.0, f"{took:.2f} s: waited for a pull to time out"


async def test_an_idle_generators_empty_pulls_are_routine(
    generator_env: GeneratorEnv, caplog: pytest.LogCaptureFixture
) -> None:
    env = generator_env
    settings = env.with_settings(nats_fetch_timeout=0.1)
    empty_before = _sample("serenade_generator_pulls_total", result="empty")
    errors_before = _sample("serenade_generator_pulls_total", result="error")
    with caplog.at_level(logging.INFO):
        async with running_generator(settings):
            await wait_for(
                lambda: (
                    _sample("serenade_generator_pulls_total", result="empty") >= empty_before + 10
                ),
                timeout=30,
                what="ten empty pulls",
            )
            # Still taking requests after them.
            order = await seed_order(env.pool, variants=1)
            await request_all(env.js, order)
            await wait_for(_final(env, order), what="the variant final")

    troubled = [
        record
        for record in caplog.records
        if record.levelno >= logging.WARNING or record.exc_info is not None
    ]
    assert troubled == []
    assert _sample("serenade_generator_pulls_total", result="error") == errors_before
