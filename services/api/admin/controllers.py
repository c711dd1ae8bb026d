"""``/v1/admin/failed-jobs``: the dead-letter table for operators (service_role)."""

import uuid
from typing import Annotated

from litestar import Controller, get, post
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED

from services.api.admin import queries
from services.api.admin.schemas import FailedJobOut, FailedJobPage
from services.api.common.auth import service_only
from services.api.common.dependencies import Ctx, Cursors, Db
from services.api.common.params import Cursor, Limit
from services.api.common.problems import problem_responses

__all__ = ["FailedJobController"]

Unresolved = Annotated[bool, QueryParameter(description="Only rows whose resolved_at is null.")]


class FailedJobController(Controller):
    path = "/v1/admin/failed-jobs"
    tags = ("admin",)
    security = ({"BearerToken": []},)
    guards = (service_only,)

    @get("/", operation_id="listFailedJobs", responses=problem_responses(400, 401, 403, 503))
    async def list_failed_jobs(
        self,
        *,
        ctx: Ctx,
        db: Db,
        cursors: Cursors,
        unresolved: Unresolved = False,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> FailedJobPage:
        """Dead-letter rows, newest first, in keyset pages."""
        return await queries.list_failed_jobs(
            db, ctx.caller, cursors, unresolved=unresolved, limit=limit, cursor=cursor
        )

    @get(
        "/{job_id:uuid}",
        operation_id="getFailedJob",
        responses=problem_responses(400, 401, 403, 404, 503),
    )
    async def get_failed_job(self, ctx: Ctx, db: Db, job_id: FromPath[uuid.UUID]) -> FailedJobOut:
        """One dead-letter row."""
        return await queries.get_failed_job(db, ctx.caller, job_id)

    @post(
        "/{job_id:uuid}/replay",
        operation_id="replayFailedJob",
        response_description="The row, marked replayed; its variant is pending again.",
        status_code=HTTP_202_ACCEPTED,
        responses=problem_responses(400, 401, 403, 404, 409, 503),
    )
    async def replay_failed_job(
        self, ctx: Ctx, db: Db, job_id: FromPath[uuid.UUID]
    ) -> FailedJobOut:
        """Queue the row's variant again and mark the row replayed."""
        return await queries.replay_failed_job(
            db, ctx.caller, job_id, correlation_id=ctx.correlation_id
        )
