"""Liveness, readiness and the metrics page."""

import asyncio
from typing import Any

from litestar import Response
from prometheus_client import CONTENT_TYPE_LATEST

from services.api.common.database import Database
from services.api.common.messaging import Messaging
from services.api.common.metrics import ApiMetrics
from services.api.common.problems import PROBLEM_MEDIA_TYPE, Problem
from services.api.system.schemas import Health
from shared.db import DATABASE_ERRORS, Caller
from shared.outbox import unpublished_count

__all__ = ["metrics_page", "readiness"]

_PROBE_TIMEOUT = 2
_POSTGRES_DOWN = DATABASE_ERRORS


async def _postgres_answers(db: Database) -> bool:
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT), db.run_as(Caller.anon()) as conn:
            await conn.fetchval("SELECT 1")
    except _POSTGRES_DOWN:
        return False
    return True


async def readiness(db: Database, messaging: Messaging, *, path: str) -> Response[Any]:
    """200 when PostgreSQL and NATS both answer; 503 problem details naming what does not."""
    checks = {
        "postgres": "ok" if await _postgres_answers(db) else "unavailable",
        "nats": "ok" if await messaging.ping(_PROBE_TIMEOUT) else "unavailable",
    }
    if all(state == "ok" for state in checks.values()):
        return Response(Health(status="ready", checks=checks))
    down = ", ".join(name for name, state in checks.items() if state != "ok")
    problem = Problem(
        title="Service Unavailable",
        status=503,
        detail=f"not ready: {down} unavailable",
        instance=path,
        checks=checks,
    )
    return Response(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=503,
        media_type=PROBLEM_MEDIA_TYPE,
        headers={"Retry-After": "1"},
    )


async def metrics_page(db: Database, messaging: Messaging, metrics: ApiMetrics) -> Response[bytes]:
    """Prometheus text; the outbox backlog is counted at scrape time (-1 when unknown)."""
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT), db.pool.acquire() as conn:
            backlog = await unpublished_count(conn)
    except _POSTGRES_DOWN:
        backlog = -1
    metrics.outbox_backlog.set(backlog)
    metrics.record_relay(messaging.relay)
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
