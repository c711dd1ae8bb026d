"""A provider that takes seconds per song: with its default settings one generator works on
hundreds of songs at once, and finishes every one of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.db import Caller, transaction
from shared.settings import Settings
from tests.helpers import wait_for

from .support import all_final, all_requests_settled, request_all, running_generator, seed_order

if TYPE_CHECKING:
    import uuid

    from .conftest import GeneratorEnv

_ORDERS = 80  # 240 variants
_DELAY_MS = 10_000


async def _generating(env: GeneratorEnv, order_ids: list[uuid.UUID]) -> int:
    async with transaction(env.pool, Caller.service()) as conn:
        count = await conn.fetchval(
            "SELECT count(*) FROM song_variants"
            " WHERE order_id = ANY($1::uuid[]) AND status = 'generating'",
            order_ids,
        )
    return int(count)


async def test_one_generator_with_default_settings_holds_hundreds_of_slow_songs_at_once(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    default = Settings.model_fields["generator_concurrency"].default
    settings = env.with_settings(generator_concurrency=default, provider_delay_ms=_DELAY_MS)
    orders = [await seed_order(env.pool) for _ in range(_ORDERS)]
    for order in orders:
        await request_all(env.js, order)
    order_ids = [order.order_id for order in orders]

    async with running_generator(settings):
        # Every request is taken before the first song is done: all 240 in work at once (the
        # old default held 8, and took 30 waves of 10 s for these).
        peak = 0

        async def everything_in_work() -> bool:
            nonlocal peak
            peak = max(peak, await _generating(env, order_ids))
            return peak == 3 * _ORDERS

        await wait_for(everything_in_work, timeout=_DELAY_MS / 1000 - 1, what="240 in work")

        async def every_order_final() -> bool:
            return all([await all_final(env.pool, order_id) for order_id in order_ids])

        await wait_for(every_order_final, timeout=60, what="every variant final")
        await wait_for(lambda: all_requests_settled(env.js), what="every request acked")

    for order in orders:
        rows = await all_final(env.pool, order.order_id)
        assert rows is not None
        assert [row.status.value for row in rows] == ["complete"] * 3
        assert [row.attempts for row in rows] == [1, 1, 1]
