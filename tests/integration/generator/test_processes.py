"""``serenade generator`` as child processes: crashes, several processes, graceful stops."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from services.launcher import ServiceProcess
from shared.enums import GenerationStatus
from tests.helpers import wait_for

from .support import (
    SeededOrder,
    all_final,
    files_under,
    request_all,
    seed_order,
    statuses,
    variant_lines,
    variants_of,
)

if TYPE_CHECKING:
    from pathlib import Path

    from shared.rows import SongVariantRow
    from shared.settings import Settings

    from .conftest import GeneratorEnv

pytestmark = pytest.mark.slow


def _generator(settings: Settings, log: Path) -> ServiceProcess:
    return ServiceProcess(["generator"], settings, log)


async def _ready(process: ServiceProcess) -> None:
    await process.wait_ready(timeout=30)


async def _orders(env: GeneratorEnv, count: int, variants: int = 3) -> list[SeededOrder]:
    orders = [await seed_order(env.pool, variants=variants) for _ in range(count)]
    for order in orders:
        await request_all(env.js, order)
    return orders


async def _rows(env: GeneratorEnv, orders: list[SeededOrder]) -> list[SongVariantRow]:
    return [row for order in orders for row in await variants_of(env.pool, order.order_id)]


async def _all_final(env: GeneratorEnv, orders: list[SeededOrder]) -> list[SongVariantRow]:
    for order in orders:
        if await all_final(env.pool, order.order_id) is None:
            return []
    return await _rows(env, orders)


async def _generating(env: GeneratorEnv, orders: list[SeededOrder], at_least: int) -> bool:
    rows = await _rows(env, orders)
    return sum(row.status is GenerationStatus.GENERATING for row in rows) >= at_least


def _one_file_per_variant(env: GeneratorEnv, rows: list[SongVariantRow]) -> None:
    files = files_under(env.storage_root)
    assert not [path for path in files if path.name.endswith(".tmp")]
    assert sorted(str(path.relative_to(env.storage_root)) for path in files) == sorted(
        row.storage_path for row in rows if row.storage_path
    )


async def test_after_a_kill_9_mid_generation_a_new_process_finishes_every_variant(
    generator_env: GeneratorEnv, tmp_path: Path
) -> None:
    env = generator_env
    settings = env.with_settings(generator_concurrency=3, provider_delay_ms=30_000)
    doomed = _generator(settings, tmp_path / "doomed.log").start()
    try:
        await _ready(doomed)
        orders = await _orders(env, 2)
        await wait_for(lambda: _generating(env, orders, 3), what="three variants generating")
        doomed.kill()
    finally:
        doomed.kill()

    successor = _generator(settings, tmp_path / "successor.log").start(
        SERENADE_PROVIDER_DELAY_MS="100"
    )
    try:
        rows = await wait_for(lambda: _all_final(env, orders), timeout=60, what="all final")
    finally:
        successor.terminate()

    assert [row.status for row in rows] == [GenerationStatus.COMPLETE] * 6
    # The three the killed process held were taken over on redelivery: a second attempt.
    assert sorted(row.attempts for row in rows) == [1, 1, 1, 2, 2, 2]
    _one_file_per_variant(env, rows)
    assert variant_lines(doomed.log()) == []  # it finished nothing


async def test_two_processes_share_the_work_and_generate_each_variant_once(
    generator_env: GeneratorEnv, tmp_path: Path
) -> None:
    env = generator_env
    settings = env.with_settings(generator_concurrency=2, provider_delay_ms=300)
    first = _generator(settings, tmp_path / "first.log").start()
    second = _generator(settings, tmp_path / "second.log").start()
    try:
        await _ready(first)
        await _ready(second)
        orders = await _orders(env, 4)
        rows = await wait_for(lambda: _all_final(env, orders), timeout=60, what="all final")
    finally:
        first.terminate()
        second.terminate()

    assert all(row.status is GenerationStatus.COMPLETE for row in rows)
    assert all(row.attempts == 1 for row in rows)
    done_by_first = variant_lines(first.log(), "complete")
    done_by_second = variant_lines(second.log(), "complete")
    assert done_by_first
    assert done_by_second
    generated = [line["variant_id"] for line in done_by_first + done_by_second]
    assert sorted(generated) == sorted(str(row.id) for row in rows)  # each exactly once
    _one_file_per_variant(env, rows)


async def test_sigterm_hands_back_variants_that_outlast_the_grace_period(
    generator_env: GeneratorEnv, tmp_path: Path
) -> None:
    env = generator_env
    settings = env.with_settings(
        generator_concurrency=3, provider_delay_ms=30_000, generator_shutdown_grace=0.5
    )
    stopping = _generator(settings, tmp_path / "stopping.log").start()
    try:
        await _ready(stopping)
        orders = await _orders(env, 2)
        await wait_for(lambda: _generating(env, orders, 3), what="three variants generating")
        started = time.monotonic()
        assert stopping.terminate(timeout=20) == 0
        took = time.monotonic() - started
    finally:
        stopping.kill()

    rows = await _rows(env, orders)
    assert took < 10
    assert [row.status for row in rows] == [GenerationStatus.PENDING] * 6  # none stuck
    assert all(row.attempts == 0 for row in rows)  # an interrupted attempt does not count
    assert len(variant_lines(stopping.log(), "handed_back")) == 3

    # The hand-backs were announced: the stopping process flushed its outbox before exiting.
    async def announced() -> list[list[str]]:
        seen = [statuses(env.recorder, row.id) for row in rows]
        return (
            [s for s in seen if s] if sum(s == ["generating", "pending"] for s in seen) == 3 else []
        )

    assert len(await wait_for(announced, what="three hand-backs announced")) == 3

    successor = _generator(settings, tmp_path / "successor.log").start(
        SERENADE_PROVIDER_DELAY_MS="0"
    )
    try:
        # Handed back with a nak: taken at once, not after the ack wait.
        rows = await wait_for(lambda: _all_final(env, orders), timeout=30, what="all final")
    finally:
        successor.terminate()
    assert all(row.status is GenerationStatus.COMPLETE for row in rows)
    assert all(row.attempts == 1 for row in rows)
    _one_file_per_variant(env, rows)


async def test_sigterm_lets_in_flight_variants_finish_within_the_grace_period(
    generator_env: GeneratorEnv, tmp_path: Path
) -> None:
    env = generator_env
    settings = env.with_settings(
        generator_concurrency=2, provider_delay_ms=1500, generator_shutdown_grace=10.0
    )
    stopping = _generator(settings, tmp_path / "stopping.log").start()
    try:
        await _ready(stopping)
        orders = await _orders(env, 1)
        await wait_for(lambda: _generating(env, orders, 2), what="two variants generating")
        assert stopping.terminate(timeout=30) == 0
    finally:
        stopping.kill()

    rows = await _rows(env, orders)
    by_status = sorted(row.status for row in rows)
    assert by_status == sorted(
        [GenerationStatus.COMPLETE, GenerationStatus.COMPLETE, GenerationStatus.PENDING]
    )
    assert len(variant_lines(stopping.log(), "complete")) == 2
    assert variant_lines(stopping.log(), "handed_back") == []
