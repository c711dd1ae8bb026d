"""The console's dead letters: the admin API's own listing and replay, for a page.

Listing and replay are ``services.api.admin``'s functions (which wrap ``shared.requeue``, the
code the CLI runs too): the same rules, the same 404 and 409, the same events.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Final

from services.api.admin import queries as admin
from services.api.admin.schemas import FailedJobOut, FailedJobPage
from services.api.common.database import Database
from services.api.common.pagination import CursorCodec
from services.api.common.problems import ApiProblem
from shared.db import Caller
from shared.requeue import replayable_job_ids

__all__ = ["PAGE_SIZE", "ReplayAll", "order_of", "page", "replay_all", "replay_one", "replayable"]

PAGE_SIZE: Final = 25
_SERVICE = Caller.service()


async def page(
    db: Database,
    cursors: CursorCodec,
    *,
    unresolved: bool,
    service: str | None,
    subject: str | None,
    cursor: str | None,
) -> FailedJobPage:
    return await admin.list_failed_jobs(
        db,
        _SERVICE,
        cursors,
        unresolved=unresolved,
        limit=PAGE_SIZE,
        cursor=cursor,
        service=service,
        subject=subject,
    )


async def one(db: Database, job_id: uuid.UUID) -> FailedJobOut:
    return await admin.get_failed_job(db, _SERVICE, job_id)


async def replay_one(db: Database, job_id: uuid.UUID, *, correlation_id: str) -> FailedJobOut:
    return await admin.replay_failed_job(db, _SERVICE, job_id, correlation_id=correlation_id)


async def replayable(db: Database) -> list[uuid.UUID]:
    """Open rows about variant requests whose variant is failed now (the CLI's ``--all``)."""
    async with db.run_as(_SERVICE) as conn:
        return await replayable_job_ids(conn)


@dataclass(frozen=True, slots=True)
class ReplayAll:
    replayed: list[uuid.UUID] = field(default_factory=list)
    refused: list[tuple[uuid.UUID, str]] = field(default_factory=list)


async def replay_all(db: Database, *, correlation_id: str) -> ReplayAll:
    """Replay every replayable row, each in its own transaction, as ``serenade failed-jobs
    replay --all`` does; a row that cannot be replayed any more is reported, not fatal."""
    outcome = ReplayAll()
    for job_id in await replayable(db):
        try:
            await replay_one(db, job_id, correlation_id=correlation_id)
        except ApiProblem as problem:
            outcome.refused.append((job_id, problem.detail))
        else:
            outcome.replayed.append(job_id)
    return outcome


def order_of(job: FailedJobOut) -> str | None:
    """The order a row's event names, when it names one (for a link to the order's page)."""
    event: Any = job.event_data
    if isinstance(event, dict):
        order_id = event.get("order_id")
        try:
            return str(uuid.UUID(str(order_id))) if order_id is not None else None
        except ValueError:
            return None
    return None
