"""The console's system page: what is queued, stuck or failing, right now.

Per durable consumer its pending, ack-pending and redelivered counts (JetStream's own figures);
the outbox's depth and its oldest unsent event's age; unresolved dead letters per service;
orders and variants finished in the last 5 and 60 minutes. Read in one service_role
transaction and one JetStream request per stream, every few seconds while the page is open.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Final

from nats.errors import Error as NatsError

from services.api.common.database import Database
from services.api.common.messaging import Messaging
from shared.db import Caller
from shared.events import STREAM_NAME
from shared.stream import ADVISORY_STREAM

__all__ = ["REFRESH_SECONDS", "ConsumerFigures", "SystemFigures", "system_figures"]

# How often an open system page refreshes its figures.
REFRESH_SECONDS: Final = 5
_NATS_TIMEOUT: Final = 2.0
_log = logging.getLogger(__name__)

_DATABASE_FIGURES = """
SELECT
    (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS outbox_depth,
    (SELECT now() - min(created_at) FROM outbox WHERE published_at IS NULL) AS outbox_age,
    (SELECT count(*) FROM orders
      WHERE completion_announced_at > now() - interval '5 minutes') AS orders_5,
    (SELECT count(*) FROM orders
      WHERE completion_announced_at > now() - interval '60 minutes') AS orders_60,
    (SELECT count(*) FROM song_variants
      WHERE completed_at > now() - interval '5 minutes') AS variants_5,
    (SELECT count(*) FROM song_variants
      WHERE completed_at > now() - interval '60 minutes') AS variants_60,
    now() AS measured_at
"""
_DEAD_LETTERS = """
SELECT service, count(*) AS unresolved FROM failed_jobs
WHERE resolved_at IS NULL GROUP BY service ORDER BY service
"""


@dataclass(frozen=True, slots=True)
class ConsumerFigures:
    stream: str
    name: str
    pending: int
    ack_pending: int
    redelivered: int


@dataclass(frozen=True, slots=True)
class SystemFigures:
    consumers: list[ConsumerFigures] | None  # None: JetStream did not answer
    outbox_depth: int
    outbox_age: dt.timedelta | None
    dead_letters: dict[str, int]
    orders_finished: tuple[int, int]  # last 5 and 60 minutes
    variants_finished: tuple[int, int]
    measured_at: dt.datetime


async def _consumers(messaging: Messaging) -> list[ConsumerFigures] | None:
    nc = messaging.nc
    if nc is None or not nc.is_connected:
        return None
    js = nc.jetstream(timeout=_NATS_TIMEOUT)
    figures = []
    try:
        for stream in (STREAM_NAME, ADVISORY_STREAM):
            for info in await js.consumers_info(stream):
                if not info.config.durable_name:
                    continue  # an ephemeral consumer (a client's own): not the system's backlog
                figures.append(
                    ConsumerFigures(
                        stream=stream,
                        name=info.name,
                        pending=info.num_pending or 0,
                        ack_pending=info.num_ack_pending or 0,
                        redelivered=info.num_redelivered or 0,
                    )
                )
    except (NatsError, TimeoutError) as error:
        _log.warning("consumer figures unavailable: %s", error)
        return None
    return sorted(figures, key=lambda each: (each.stream, each.name))


async def system_figures(db: Database, messaging: Messaging) -> SystemFigures:
    async with db.run_as(Caller.service()) as conn:
        row = await conn.fetchrow(_DATABASE_FIGURES)
        dead = await conn.fetch(_DEAD_LETTERS)
    assert row is not None
    return SystemFigures(
        consumers=await _consumers(messaging),
        outbox_depth=row["outbox_depth"],
        outbox_age=row["outbox_age"],
        dead_letters={each["service"]: each["unresolved"] for each in dead},
        orders_finished=(row["orders_5"], row["orders_60"]),
        variants_finished=(row["variants_5"], row["variants_60"]),
        measured_at=row["measured_at"],
    )
