"""`serenade failed-jobs list` and `serenade failed-jobs replay` through the real CLI."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from click.testing import CliRunner, Result

from services.cli import main
from shared.db import Caller, transaction
from shared.enums import GenerationStatus
from shared.events import SUBJECT_VARIANT_REQUESTED
from tests.integration.deadletter.support import failed_jobs, requested, seed_order, variant

if TYPE_CHECKING:
    import asyncpg


async def _serenade(database_url: str, *args: str) -> Result:
    """Run the CLI in a thread: it runs its own event loop."""
    env = {"SERENADE_DATABASE_URL": database_url, "SERENADE_NATS_URL": None}
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env)


async def _insert_job(
    pool: asyncpg.Pool,
    *,
    subject: str = SUBJECT_VARIANT_REQUESTED,
    event: Any = None,
    error: str = "provider exploded",
    variant_id: uuid.UUID | None = None,
    age: str = "0 seconds",
    state: str = "open",
) -> uuid.UUID:
    async with transaction(pool, Caller.service()) as conn:
        job_id: uuid.UUID = await conn.fetchval(
            "INSERT INTO failed_jobs (subject, service, event_data, event_text, error_type, error,"
            " attempts, message_id, variant_id, created_at, replayed_at, resolved_at)"
            " VALUES ($1, 'generator', $2, $3, 'ProviderError', $4, 3, $5, $6,"
            " now() - $7::text::interval, CASE WHEN $8 <> 'open' THEN now() END,"
            " CASE WHEN $8 = 'resolved' THEN now() END) RETURNING id",
            subject,
            event if event is not None else None,
            None if event is not None else "raw text",
            error,
            str(uuid.uuid4()),
            variant_id,
            age,
            state,
        )
    return job_id


@pytest.fixture(scope="module")
async def jobs(dl_pool: asyncpg.Pool) -> dict[str, uuid.UUID]:
    """Rows in each state, of several ages; two replayable ones."""
    order_id, _, variant_ids = await seed_order(
        dl_pool, GenerationStatus.FAILED, GenerationStatus.FAILED, GenerationStatus.COMPLETE
    )
    events = [
        requested(order_id, vid, n).model_dump(mode="json") for n, vid in enumerate(variant_ids, 1)
    ]
    return {
        "old_open": await _insert_job(
            dl_pool,
            event=events[0],
            variant_id=variant_ids[0],
            age="3 hours",
            error="first line\nsecond line " + "x" * 200,
        ),
        "recent_open": await _insert_job(
            dl_pool, event=events[1], variant_id=variant_ids[1], age="3 minutes"
        ),
        "resolved": await _insert_job(
            dl_pool, event=events[2], variant_id=variant_ids[2], age="2 days", state="resolved"
        ),
        "poison": await _insert_job(dl_pool, subject="serenade.orders.created", age="10 seconds"),
    }


async def test_list_prints_an_aligned_table_newest_first(
    dl_database_url: str, jobs: dict[str, uuid.UUID]
) -> None:
    result = await _serenade(dl_database_url, "failed-jobs", "list")

    assert result.exit_code == 0, result.output
    header, *lines = result.output.splitlines()
    assert header.split() == ["ID", "AGE", "STATE", "SUBJECT", "ERROR"]
    by_id = {line.split()[0]: line for line in lines}
    assert list(by_id)[:4] == [
        str(jobs[name]) for name in ("poison", "recent_open", "old_open", "resolved")
    ]
    assert by_id[str(jobs["old_open"])].split()[1:3] == ["3h", "open"]
    assert by_id[str(jobs["recent_open"])].split()[1:3] == ["3m", "open"]
    assert by_id[str(jobs["resolved"])].split()[1:3] == ["2d", "resolved"]
    old = by_id[str(jobs["old_open"])]
    assert "ProviderError: first line second line" in old
    assert old.endswith("…")
    # Aligned: every line's subject starts in the same column.
    column = header.index("SUBJECT")
    assert all(line[column:].startswith("serenade.") for line in lines)


async def test_list_json_unresolved_and_limit(
    dl_database_url: str, jobs: dict[str, uuid.UUID]
) -> None:
    result = await _serenade(dl_database_url, "failed-jobs", "list", "--json", "--unresolved")

    assert result.exit_code == 0, result.output
    rows = [orjson.loads(line) for line in result.output.splitlines()]
    ids = {row["id"] for row in rows}
    assert str(jobs["resolved"]) not in ids
    assert {str(jobs["old_open"]), str(jobs["poison"])} <= ids
    old = next(row for row in rows if row["id"] == str(jobs["old_open"]))
    assert old["state"] == "open"
    assert old["event_data"]["reason"] == "created"
    assert old["subject"] == SUBJECT_VARIANT_REQUESTED
    assert set(old) >= {"error_type", "error", "attempts", "message_id", "created_at"}

    limited = await _serenade(dl_database_url, "failed-jobs", "list", "--json", "--limit", "1")
    assert len(limited.output.splitlines()) == 1


async def test_replay_by_id_then_again_is_refused(
    dl_database_url: str, dl_pool: asyncpg.Pool, jobs: dict[str, uuid.UUID]
) -> None:
    result = await _serenade(dl_database_url, "failed-jobs", "replay", str(jobs["recent_open"]))

    assert result.exit_code == 0, result.output
    assert f"replayed {jobs['recent_open']}" in result.output
    (row,) = await failed_jobs(dl_pool, "id = $1", jobs["recent_open"])
    assert row.variant_id is not None
    assert (await variant(dl_pool, row.variant_id)).status is GenerationStatus.PENDING

    again = await _serenade(dl_database_url, "failed-jobs", "replay", str(jobs["recent_open"]))
    assert again.exit_code == 1
    assert "is pending, not failed" in again.output

    poison = await _serenade(dl_database_url, "failed-jobs", "replay", str(jobs["poison"]))
    assert poison.exit_code == 1
    assert "not a variant request" in poison.output

    unknown = await _serenade(dl_database_url, "failed-jobs", "replay", str(uuid.uuid4()))
    assert unknown.exit_code == 1
    assert "no failed job" in unknown.output

    listed = await _serenade(dl_database_url, "failed-jobs", "list")
    line = next(x for x in listed.output.splitlines() if x.startswith(str(jobs["recent_open"])))
    assert line.split()[2] == "replayed"


async def test_replay_all_replays_every_failed_variant_once(
    dl_database_url: str, dl_pool: asyncpg.Pool, jobs: dict[str, uuid.UUID]
) -> None:
    order_id, _, (variant_id,) = await seed_order(dl_pool, GenerationStatus.FAILED)
    event = requested(order_id, variant_id).model_dump(mode="json")
    older = await _insert_job(dl_pool, event=event, variant_id=variant_id, age="1 hour")
    newer = await _insert_job(dl_pool, event=event, variant_id=variant_id, age="1 minute")

    result = await _serenade(dl_database_url, "failed-jobs", "replay", "--all")

    assert result.exit_code == 0, result.output
    assert f"replayed {newer}" in result.output
    assert str(older) not in result.output  # one replay per variant
    assert f"replayed {jobs['old_open']}" in result.output
    assert (await variant(dl_pool, variant_id)).status is GenerationStatus.PENDING

    nothing = await _serenade(dl_database_url, "failed-jobs", "replay", "--all")
    assert nothing.exit_code == 0
    assert "nothing to replay" in nothing.output


async def test_replay_needs_one_id_or_all(dl_database_url: str) -> None:
    result = await _serenade(dl_database_url, "failed-jobs", "replay")
    assert result.exit_code == 2
    assert "give one ID or --all" in result.output
