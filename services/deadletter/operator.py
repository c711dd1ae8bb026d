"""``serenade failed-jobs list`` and ``serenade failed-jobs replay``: the operator's view.

Each command returns its exit code: 0 when everything asked for was done, 1 when a row could not
be replayed (or the database could not be reached), 2 when a setting is missing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import TYPE_CHECKING, Final, TypeVar

import asyncpg
import click
import orjson

from shared.db import DATABASE_ERRORS, Caller, connect, transaction
from shared.keyset import failed_jobs_page
from shared.requeue import ReplayError, replay_failed_job, replayable_job_ids
from shared.rows import FailedJobRow
from shared.settings import MissingSettingError

if TYPE_CHECKING:
    import uuid
    from collections.abc import Awaitable, Callable, Sequence

    from shared.settings import Settings

__all__ = ["format_age", "format_table", "list_command", "replay_command", "state_of"]

_ERROR_WIDTH: Final = 70
_SUBJECT_WIDTH: Final = 40
_COLUMNS: Final = ("ID", "AGE", "STATE", "SUBJECT", "ERROR")
_T = TypeVar("_T")


def list_command(settings: Settings, *, as_json: bool, unresolved: bool, limit: int) -> int:
    """Print dead-letter rows, newest first: an aligned table, or one JSON object a line."""

    async def fetch(conn: asyncpg.Connection) -> list[FailedJobRow]:
        async with transaction(conn, Caller.service()):
            page = await failed_jobs_page(
                conn, unresolved=unresolved, after=None, limit=limit, columns="*"
            )
        return [FailedJobRow.model_validate(dict(row)) for row in page.rows]

    outcome = _with_database(settings, fetch)
    if isinstance(outcome, int):
        return outcome
    now = dt.datetime.now(dt.UTC)
    if as_json:
        for row in outcome:
            line = row.model_dump(mode="json") | {"state": state_of(row)}
            click.echo(orjson.dumps(line).decode())
    elif outcome:
        click.echo(format_table(outcome, now=now))
    else:
        click.echo("no unresolved failed jobs" if unresolved else "no failed jobs")
    return 0


def replay_command(settings: Settings, *, job_id: uuid.UUID | None, replay_all: bool) -> int:
    """Replay one row (``job_id``) or every replayable row (``replay_all``)."""

    async def replay(conn: asyncpg.Connection) -> int:
        if not replay_all:
            assert job_id is not None
            return await _replay_one(conn, job_id)
        async with transaction(conn, Caller.service()):
            job_ids = await replayable_job_ids(conn)
        if not job_ids:
            click.echo("nothing to replay: no open failed job has a failed variant")
            return 0
        codes = [await _replay_one(conn, each) for each in job_ids]
        replayed = codes.count(0)
        click.echo(f"replayed {replayed} of {len(job_ids)} failed job(s)")
        return 0 if replayed == len(job_ids) else 1

    return _with_database(settings, replay)


async def _replay_one(conn: asyncpg.Connection, job_id: uuid.UUID) -> int:
    try:
        async with transaction(conn, Caller.service()):
            done = await replay_failed_job(conn, job_id)
    except ReplayError as error:
        click.echo(f"not replayed: {error}", err=True)
        return 1
    click.echo(done.describe())
    return 0


def _with_database(
    settings: Settings, work: Callable[[asyncpg.Connection], Awaitable[_T]]
) -> _T | int:
    """Run ``work`` on one connection; an exit code when the database cannot be used."""
    try:
        dsn = settings.require_database_url()
    except MissingSettingError as error:
        click.echo(f"error: {error}", err=True)
        return 2

    async def run() -> _T:
        conn = await connect(dsn)
        try:
            return await work(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(run())
    except DATABASE_ERRORS as error:
        click.echo(f"error: cannot use PostgreSQL: {error}", err=True)
        return 1


# --- formatting -------------------------------------------------------------------------------
def state_of(row: FailedJobRow) -> str:
    """``resolved`` once its variant completed, ``replayed`` while a replay is out, else
    ``open``."""
    if row.resolved_at is not None:
        return "resolved"
    if row.replayed_at is not None:
        return "replayed"
    return "open"


def format_age(created_at: dt.datetime, *, now: dt.datetime) -> str:
    """``45s``, ``3m``, ``2h``, ``5d``: the largest unit that fits."""
    seconds = max(int((now - created_at).total_seconds()), 0)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _one_line(text: str, width: int) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def format_table(rows: Sequence[FailedJobRow], *, now: dt.datetime) -> str:
    """An aligned table: id, age, state, subject and the error (type and text, truncated)."""
    cells: list[tuple[str, ...]] = [_COLUMNS]
    for row in rows:
        cells.append(
            (
                str(row.id),
                format_age(row.created_at, now=now),
                state_of(row),
                _one_line(row.subject, _SUBJECT_WIDTH),
                _one_line(f"{row.error_type}: {row.error}", _ERROR_WIDTH),
            )
        )
    widths = [max(len(line[column]) for line in cells) for column in range(len(_COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )
