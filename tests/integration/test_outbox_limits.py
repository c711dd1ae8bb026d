"""The outbox refuses an event NATS could never accept (drill 6): written, it would stop the relay
at it for ever and hold back every event after it, from every service."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from shared.db import Caller, transaction
from shared.events import DeadLettered
from shared.outbox import MAX_EVENT_BYTES, EventTooLargeError, enqueue

if TYPE_CHECKING:
    import asyncpg


def _letter(size: int) -> DeadLettered:
    return DeadLettered(
        original_subject="serenade.variants.requested",
        original_event="x" * size,
        error_type="Drill",
        error="too large",
        attempts=1,
        service="drill",
    )


async def _written(pool: asyncpg.Pool, event: DeadLettered) -> bool:
    async with transaction(pool, Caller.service()) as conn:
        found = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE event_id = $1", event.event_id
        )
    return bool(found)


async def test_an_event_larger_than_the_limit_is_refused_and_nothing_is_written(
    pool: asyncpg.Pool,
) -> None:
    small, large = _letter(100), _letter(MAX_EVENT_BYTES)

    with pytest.raises(EventTooLargeError, match="the outbox takes at most"):
        async with transaction(pool, Caller.service()) as conn:
            await enqueue(conn, small, large)

    assert not await _written(pool, small)  # the whole transaction failed
    assert not await _written(pool, large)


async def test_an_event_within_the_limit_is_written(pool: asyncpg.Pool) -> None:
    event = _letter(MAX_EVENT_BYTES - 1024)

    async with transaction(pool, Caller.service()) as conn:
        await enqueue(conn, event)

    assert await _written(pool, event)
    async with transaction(pool, Caller.service()) as conn:
        await conn.execute("DELETE FROM outbox WHERE event_id = $1", event.event_id)
