"""Seeding, publishing and observing for the generator's tests.

Orders are seeded directly as service_role and requests published directly with nats-py, as
the API would through its outbox; the generator runs in this process (``running_generator``) or
as ``serenade generator`` children (``services.launcher.ServiceProcess``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from services.generator.app import build_app
from services.generator.consumer import DURABLE
from shared.db import Caller, transaction
from shared.events import STREAM_NAME, VariantRequested
from shared.rows import SongVariantRow

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    import asyncpg
    from faststream import FastStream
    from nats.aio.client import Client as NatsClient
    from nats.js import JetStreamContext

    from shared.settings import Settings
    from tests.helpers import SubjectRecorder


@dataclass(frozen=True)
class SeededOrder:
    order_id: uuid.UUID
    user_id: uuid.UUID
    variant_ids: list[uuid.UUID]


async def seed_order(
    pool: asyncpg.Pool, *, variants: int = 3, recipient: str = "Ana", story: str | None = None
) -> SeededOrder:
    """An order with ``variants`` pending variants, inserted as service_role."""
    order_id, user_id = uuid.uuid4(), uuid.uuid4()
    variant_ids = [uuid.uuid4() for _ in range(variants)]
    async with transaction(pool, Caller.service()) as conn:
        await conn.execute(
            "INSERT INTO orders (id, user_id, recipient_name, occasion, genre, mood, story)"
            " VALUES ($1, $2, $3, 'birthday', 'pop', 'joyful', $4)",
            order_id,
            user_id,
            recipient,
            story,
        )
        await conn.executemany(
            "INSERT INTO song_variants (id, order_id, variant_number) VALUES ($1, $2, $3)",
            [(variant_id, order_id, n) for n, variant_id in enumerate(variant_ids, start=1)],
        )
    return SeededOrder(order_id, user_id, variant_ids)


async def request_all(
    js: JetStreamContext, order: SeededOrder, *, correlation_id: str | None = None
) -> list[VariantRequested]:
    """One ``serenade.variants.requested`` per variant of ``order``, as the API sends them."""
    return [
        await publish_request(js, variant_id, order.order_id, n, correlation_id=correlation_id)
        for n, variant_id in enumerate(order.variant_ids, start=1)
    ]


async def publish_request(
    js: JetStreamContext,
    variant_id: uuid.UUID,
    order_id: uuid.UUID,
    variant_number: int,
    *,
    correlation_id: str | None = None,
) -> VariantRequested:
    event = VariantRequested(
        variant_id=variant_id,
        order_id=order_id,
        variant_number=variant_number,
        reason="created",
        correlation_id=correlation_id,
    )
    await js.publish(event.subject, event.to_json(), headers=event.headers())
    return event


async def publish_raw(js: JetStreamContext, data: bytes) -> int:
    """Any bytes on the request subject; returns the stream sequence."""
    ack = await js.publish(
        VariantRequested.subject, data, headers={"Nats-Msg-Id": str(uuid.uuid4())}
    )
    return ack.seq


async def variants_of(pool: asyncpg.Pool, order_id: uuid.UUID) -> list[SongVariantRow]:
    async with transaction(pool, Caller.service()) as conn:
        rows = await conn.fetch(
            "SELECT * FROM song_variants WHERE order_id = $1 ORDER BY variant_number", order_id
        )
    return [SongVariantRow.model_validate(dict(row)) for row in rows]


async def all_final(pool: asyncpg.Pool, order_id: uuid.UUID) -> list[SongVariantRow] | None:
    """The variants once every one is complete or failed; None before."""
    rows = await variants_of(pool, order_id)
    return rows if rows and all(row.status.is_final for row in rows) else None


async def acked_through(js: JetStreamContext, sequence: int) -> bool:
    """The generator's consumer has settled every message up to ``sequence``."""
    info = await js.consumer_info(STREAM_NAME, DURABLE)
    return info.ack_floor is not None and info.ack_floor.stream_seq >= sequence


async def all_requests_settled(js: JetStreamContext) -> bool:
    """Every request published so far is settled (acked, or terminally given up)."""
    last = await js.get_last_msg(STREAM_NAME, VariantRequested.subject)
    assert last.seq is not None
    return await acked_through(js, last.seq)


def events(recorder: SubjectRecorder, subject: str) -> list[dict[str, Any]]:
    return recorder.payloads(subject)


def statuses(recorder: SubjectRecorder, variant_id: uuid.UUID) -> list[str]:
    """The statuses announced for one variant, in the order they reached NATS."""
    return [
        payload["status"]
        for payload in recorder.payloads("serenade.variants.status")
        if payload["variant_id"] == str(variant_id)
    ]


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


@contextlib.asynccontextmanager
async def running_generator(settings: Settings) -> AsyncIterator[FastStream]:
    """The generator app in this process, started and stopped as ``serenade generator`` does
    (without the signal handlers)."""
    app = build_app(settings)
    async with app.lifespan_context():
        await app.start()
        try:
            yield app
        finally:
            await asyncio.wait_for(app.stop(), 30)


def log_lines(text: str) -> list[dict[str, Any]]:
    """The JSON lines of a service's log (anything else skipped)."""
    lines = []
    for line in text.splitlines():
        with contextlib.suppress(orjson.JSONDecodeError):
            value = orjson.loads(line)
            if isinstance(value, dict):
                lines.append(value)
    return lines


def variant_lines(text: str, outcome: str | None = None) -> list[dict[str, Any]]:
    return [
        line
        for line in log_lines(text)
        if line.get("message") == "variant" and (outcome is None or line["outcome"] == outcome)
    ]


async def close_quietly(nc: NatsClient) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(nc.close(), 5)
