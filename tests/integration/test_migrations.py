"""``serenade migrate``: empty to head, re-run as a no-op, concurrent runners, failing files."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import TYPE_CHECKING

import asyncpg
import pytest

from shared.db import connect
from shared.migrations import Migration, MigrationError, apply_migrations, load_migrations

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory

EXPECTED_TABLES = {"orders", "song_variants", "failed_jobs", "outbox", "schema_migrations"}


async def _tables(dsn: str) -> set[str]:
    conn = await connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {row["tablename"] for row in rows}


async def _history(dsn: str) -> list[str]:
    conn = await connect(dsn)
    try:
        rows = await conn.fetch("SELECT name FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    return [row["name"] for row in rows]


def _migrate_cli(dsn: str | None) -> subprocess.Popen[bytes]:
    env = {"PATH": "/usr/bin:/bin"} | ({"SERENADE_DATABASE_URL": dsn} if dsn else {})
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "migrate"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def _run_migrate(dsn: str | None) -> subprocess.CompletedProcess[bytes]:
    process = _migrate_cli(dsn)
    stdout, stderr = await asyncio.to_thread(process.communicate)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


async def test_migrate_takes_an_empty_database_to_head_then_does_nothing(
    make_database: DatabaseFactory,
) -> None:
    dsn = await make_database(migrated=False)
    first = await _run_migrate(dsn)
    assert first.returncode == 0, first.stderr.decode()
    names = [migration.name for migration in load_migrations()]
    assert f"applied {names[0]}" in first.stdout.decode()
    assert await _tables(dsn) >= EXPECTED_TABLES
    assert await _history(dsn) == names

    again = await _run_migrate(dsn)
    assert again.returncode == 0, again.stderr.decode()
    assert "database is up to date" in again.stdout.decode()
    assert await _history(dsn) == names


async def test_three_concurrent_migrate_processes_all_succeed_and_apply_once(
    make_database: DatabaseFactory,
) -> None:
    dsn = await make_database(migrated=False)
    processes = [_migrate_cli(dsn) for _ in range(3)]
    results = await asyncio.gather(*(asyncio.to_thread(p.communicate) for p in processes))
    for process, (_, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, stderr.decode()
    outputs = [stdout.decode() for stdout, _ in results]
    first_name = load_migrations()[0].name
    assert sum(f"applied {first_name}" in output for output in outputs) == 1
    assert await _history(dsn) == [migration.name for migration in load_migrations()]


async def test_a_failing_migration_rolls_back_whole_and_names_file_and_statement(
    make_database: DatabaseFactory,
) -> None:
    dsn = await make_database()
    broken = Migration(
        version="9999",
        name="9999_broken.sql",
        sql=(
            "-- a comment before\n"
            "CREATE TABLE half_done (id int);\n"
            "\n"
            "INSERT INTO half_done VALUES ('not a number');\n"
        ),
    )
    conn = await connect(dsn)
    try:
        with pytest.raises(MigrationError) as raised:
            await apply_migrations(conn, [*load_migrations(), broken])
        message = str(raised.value)
        assert "9999_broken.sql" in message
        assert "line 4" in message
        assert "INSERT INTO half_done" in message
        # Nothing of the file stayed: not its table, not a history row.
        assert await conn.fetchval("SELECT to_regclass('half_done')") is None
        assert "9999_broken.sql" not in await _history(dsn)
        # The lock was released: a later run goes through.
        assert await apply_migrations(conn) == []
    finally:
        await conn.close()


# A migration that fails while it runs, not while PostgreSQL parses it: a constraint that rows
# already there break, then a duplicate object. Such errors carry no position.
_RUNTIME_FAILURE = (
    "CREATE TABLE guarded (amount int);\n"
    "INSERT INTO guarded VALUES (-1);\n"
    "\n"
    "ALTER TABLE guarded ADD CONSTRAINT amount_positive CHECK (amount > 0);\n"
    "CREATE TABLE guarded (amount int);\n"
)


async def test_postgres_gives_no_position_for_a_failure_at_run_time(
    make_database: DatabaseFactory,
) -> None:
    # Why shared.migrations.sqlsplit exists: run as one script, asyncpg's PostgresError carries
    # a position (an offset in the whole script) only for errors found while parsing; a
    # constraint that existing rows break, a duplicate table or a missing referenced table
    # come without one, so only running statement by statement can name the failing one.
    conn = await connect(await make_database())
    try:
        with pytest.raises(asyncpg.CheckViolationError) as raised:
            async with conn.transaction():
                await conn.execute(_RUNTIME_FAILURE)
        assert raised.value.position is None
        with pytest.raises(asyncpg.PostgresSyntaxError) as parsed:
            await conn.execute("SELECT 1;\nSELEC 2;")
        assert parsed.value.position == "11"  # parse errors alone are located
    finally:
        await conn.close()


async def test_a_migration_failing_at_run_time_names_its_statement(
    make_database: DatabaseFactory,
) -> None:
    dsn = await make_database()
    broken = Migration(version="9999", name="9999_guard.sql", sql=_RUNTIME_FAILURE)
    conn = await connect(dsn)
    try:
        with pytest.raises(MigrationError) as raised:
            await apply_migrations(conn, [*load_migrations(), broken])
        message = str(raised.value)
        assert "9999_guard.sql, statement at line 4 failed: CheckViolationError" in message
        assert "ALTER TABLE guarded ADD CONSTRAINT amount_positive" in message
        assert await conn.fetchval("SELECT to_regclass('guarded')") is None
    finally:
        await conn.close()


async def test_a_migration_changed_after_it_was_applied_is_refused(
    make_database: DatabaseFactory,
) -> None:
    dsn = await make_database()
    first = load_migrations()[0]
    edited = Migration(first.version, first.name, first.sql + "\n-- edited later\n")
    conn = await connect(dsn)
    try:
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await apply_migrations(conn, [edited])
    finally:
        await conn.close()


async def test_migrate_creates_the_roles_and_grants_them_without_inheritance(
    database_url: str,
) -> None:
    conn = await connect(database_url)
    try:
        roles = await conn.fetch(
            "SELECT rolname, rolcanlogin, rolbypassrls, rolsuper FROM pg_roles"
            " WHERE rolname IN ('anon', 'authenticated', 'service_role')"
        )
        unforced = await conn.fetch(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r'"
            " AND NOT (c.relrowsecurity AND c.relforcerowsecurity)"
        )
    finally:
        await conn.close()
    assert {row["rolname"] for row in roles} == {"anon", "authenticated", "service_role"}
    assert not any(row["rolcanlogin"] or row["rolbypassrls"] or row["rolsuper"] for row in roles)
    assert [row["relname"] for row in unforced] == []


async def test_migrate_without_a_database_url_says_what_is_missing() -> None:
    result = await _run_migrate(None)
    assert result.returncode != 0
    assert "SERENADE_DATABASE_URL is not set" in result.stderr.decode()
