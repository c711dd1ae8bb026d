"""failed_jobs rows about a variant that is already complete are born resolved (drill 6: a late
or forged "given up" advisory): completion resolves the open rows, and such a row would
otherwise stay open for ever, its replay refused."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from services.deadletter.records import FailureRecord, Reason
from services.deadletter.store import insert_failure
from shared.db import Caller, transaction
from shared.enums import GenerationStatus
from tests.integration.deadletter.support import failed_jobs, seed_order

if TYPE_CHECKING:
    import asyncpg


def _record(variant_id: uuid.UUID | None) -> FailureRecord:
    return FailureRecord(
        subject="serenade.variants.requested",
        service="generator",
        event_data={"variant_id": str(variant_id)},
        event_text=None,
        error_type="MaxDeliveriesExceeded",
        error="given up",
        attempts=13,
        message_id=f"advisory:SERENADE:{uuid.uuid4().int % 10**9}:generator",
        correlation_id=None,
        variant_id=variant_id,
        reason=Reason.MAX_DELIVERIES,
    )


async def _stored(pool: asyncpg.Pool, record: FailureRecord) -> uuid.UUID:
    async with transaction(pool, Caller.service()) as conn:
        row_id = await insert_failure(conn, record)
    assert row_id is not None
    return row_id


async def test_a_row_about_a_complete_variant_is_stored_resolved(pool: asyncpg.Pool) -> None:
    _, _, [complete] = await seed_order(pool, GenerationStatus.COMPLETE)

    row_id = await _stored(pool, _record(complete))

    [row] = await failed_jobs(pool, "id = $1", row_id)
    assert row.resolved_at is not None


async def test_a_row_about_an_unfinished_or_failed_variant_or_none_is_stored_open(
    pool: asyncpg.Pool,
) -> None:
    _, _, variants = await seed_order(
        pool, GenerationStatus.FAILED, GenerationStatus.GENERATING, GenerationStatus.PENDING
    )
    rows = [await _stored(pool, _record(variant_id)) for variant_id in [*variants, None]]

    stored = await failed_jobs(pool, "id = ANY($1)", rows)
    assert len(stored) == 4
    assert all(row.resolved_at is None for row in stored)
