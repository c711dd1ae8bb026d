"""The operator's view of the dead-letter table: list, read, replay (service_role only)."""

import hashlib
import uuid

import asyncpg

from services.api.admin.schemas import FailedJobOut, FailedJobPage
from services.api.common.database import Database
from services.api.common.pagination import CursorCodec
from services.api.common.problems import Conflict, NotFound
from shared import requeue
from shared.db import Caller
from shared.keyset import FAILED_JOB_COLUMNS, failed_jobs_page

__all__ = ["get_failed_job", "list_failed_jobs", "replay_failed_job"]

_COLUMNS = FAILED_JOB_COLUMNS


def _listing(unresolved: bool, service: str | None, subject: str | None) -> str:
    # A cursor of the filtered listing is not valid in the unfiltered one, and back.
    name = "failed_jobs:unresolved" if unresolved else "failed_jobs"
    if service is None and subject is None:
        return name
    filters = f"{service!r}/{subject!r}".encode("utf-8", "replace")
    return f"{name}:{hashlib.sha256(filters).hexdigest()[:32]}"


def _job_out(row: asyncpg.Record) -> FailedJobOut:
    event = row["event_data"] if row["event_data"] is not None else row["event_text"]
    return FailedJobOut.model_validate({**dict(row), "event_data": event})


async def list_failed_jobs(
    db: Database,
    caller: Caller,
    cursors: CursorCodec,
    *,
    unresolved: bool,
    limit: int,
    cursor: str | None,
    service: str | None = None,
    subject: str | None = None,
) -> FailedJobPage:
    """Dead-letter rows, newest first, optionally only those not yet resolved, of one service
    or about one subject (the admin API and the operator console)."""
    listing = _listing(unresolved, service, subject)
    after = cursors.decode(listing, cursor)
    async with db.run_as(caller) as conn:
        page = await failed_jobs_page(
            conn, unresolved=unresolved, after=after, limit=limit, service=service, subject=subject
        )
    return FailedJobPage(
        items=[_job_out(row) for row in page.rows],
        next_cursor=None if page.next is None else cursors.encode(listing, page.next),
    )


async def get_failed_job(db: Database, caller: Caller, job_id: uuid.UUID) -> FailedJobOut:
    async with db.run_as(caller) as conn:
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM failed_jobs WHERE id = $1", job_id)
    if row is None:
        raise NotFound("no such failed job")
    return _job_out(row)


async def replay_failed_job(
    db: Database, caller: Caller, job_id: uuid.UUID, *, correlation_id: str
) -> FailedJobOut:
    """Queue the row's variant again (pending, attempts reset, a new request event) and mark
    the row replayed; 409 unless that variant is failed, so a replay is never doubled."""
    async with db.run_as(caller) as conn:
        try:
            await requeue.replay_failed_job(conn, job_id, correlation_id=correlation_id)
        except requeue.FailedJobNotFoundError as error:
            raise NotFound("no such failed job") from error
        except requeue.ReplayError as error:
            raise Conflict(str(error)) from error
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM failed_jobs WHERE id = $1", job_id)
    return _job_out(row)
