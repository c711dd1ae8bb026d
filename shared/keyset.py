"""Keyset pages, newest first: the one query shape of every listing (the API's orders and
failed jobs, the CLI's ``failed-jobs list``).

A page is the rows after a position ``(created_at, id)`` in descending order; one row more than
asked is read to learn whether another page follows, so no count is ever needed. The API wraps
a position in a signed cursor (``services.api.common.pagination``); the CLI shows first pages.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

    import asyncpg

__all__ = [
    "FAILED_JOB_COLUMNS",
    "Page",
    "Position",
    "failed_jobs_page",
    "newest_first",
    "page_of",
]

FAILED_JOB_COLUMNS: Final = (
    "id, subject, service, event_data, event_text, error_type, error, attempts, message_id,"
    " correlation_id, variant_id, created_at, replayed_at, resolved_at"
)


@dataclass(frozen=True, slots=True)
class Position:
    """The last row a page showed; the next page starts after it."""

    created_at: dt.datetime
    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Page:
    """At most ``limit`` rows, and where the next page starts (None: this is the last)."""

    rows: list[asyncpg.Record]
    next: Position | None


async def newest_first(
    conn: asyncpg.Connection,
    *,
    columns: str,
    table: str,
    where: Sequence[str] = (),
    args: Sequence[object] = (),
    after: Position | None,
    limit: int,
) -> Page:
    """``SELECT columns FROM table WHERE where...`` newest first, after ``after``. ``where``
    refers to ``args`` as ``$1``...; the position and the limit take the numbers after them."""
    conditions = list(where)
    params = list(args)
    if after is not None:
        params += [after.created_at, after.id]
        conditions.append(f"(created_at, id) < (${len(params) - 1}, ${len(params)})")
    params.append(limit + 1)
    filtered = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = await conn.fetch(
        f"SELECT {columns} FROM {table}{filtered}"
        f" ORDER BY created_at DESC, id DESC LIMIT ${len(params)}",
        *params,
    )
    return page_of(rows, limit)


def page_of(rows: Sequence[asyncpg.Record], limit: int) -> Page:
    """The page of ``rows`` read newest first with one more than ``limit`` asked for."""
    page = list(rows[:limit])
    if len(rows) > limit and page:
        return Page(page, Position(page[-1]["created_at"], page[-1]["id"]))
    return Page(page, None)


async def failed_jobs_page(
    conn: asyncpg.Connection,
    *,
    unresolved: bool,
    after: Position | None,
    limit: int,
    service: str | None = None,
    subject: str | None = None,
    columns: str = FAILED_JOB_COLUMNS,
) -> Page:
    """Dead-letter rows newest first, optionally only those not yet resolved, of one service or
    about one subject."""
    where: list[str] = []
    args: list[object] = []
    if unresolved:
        where.append("resolved_at IS NULL")
    if service is not None:
        args.append(service)
        where.append(f"service = ${len(args)}")
    if subject is not None:
        args.append(subject)
        where.append(f"subject = ${len(args)}")
    return await newest_first(
        conn,
        columns=columns,
        table="failed_jobs",
        where=where,
        args=args,
        after=after,
        limit=limit,
    )
