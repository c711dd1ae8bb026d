"""Applies the versioned SQL files of this package, once each, in order.

Files are named ``NNNN_description.sql``. Each file runs in its own transaction, statement by
statement, so a failure rolls the whole file back and the error names the file, the line and the
statement. A PostgreSQL advisory lock serialises concurrent runners: the second waits, then finds
nothing left to do.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

import asyncpg

from shared.migrations.sqlsplit import split_statements

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Migration", "MigrationError", "apply_migrations", "load_migrations"]

# Any constant will do; it only has to differ from other advisory locks taken in this database.
_LOCK_KEY = 0x5E4E_AD3E
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
APP_ROLES = ("anon", "authenticated", "service_role")


class MigrationError(RuntimeError):
    """A migration failed; nothing of its file was applied."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """The migration files shipped in this package, by version."""
    found = []
    for entry in resources.files(__package__).iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(match.group(1), entry.name, entry.read_text(encoding="utf-8")))
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version: {sorted(versions)}")
    return sorted(found, key=lambda migration: migration.version)


# Roles are cluster-wide, so another database's runner may create them at the same moment:
# duplicate_object is expected and harmless. They never log in and never bypass RLS.
_CREATE_ROLES = """
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = role_name) THEN
                EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT NOBYPASSRLS', role_name);
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
        -- The login role may SET ROLE to each, but must not inherit their rights (nor their
        -- policies) while acting as itself. PostgreSQL 15 has no per-grant INHERIT: there, make
        -- the login role NOINHERIT.
        IF NOT pg_catalog.pg_has_role(current_user, role_name, 'MEMBER') THEN
            IF current_setting('server_version_num')::int >= 160000 THEN
                EXECUTE format('GRANT %I TO %I WITH INHERIT FALSE, SET TRUE',
                               role_name, current_user);
            ELSE
                EXECUTE format('GRANT %I TO %I', role_name, current_user);
            END IF;
        END IF;
    END LOOP;
END
$$;
"""

_CREATE_HISTORY = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON schema_migrations FROM PUBLIC;
ALTER TABLE schema_migrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE schema_migrations FORCE ROW LEVEL SECURITY;
DO $$
BEGIN
    -- Only a session acting as itself (the migrator), never one that took an app role.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_policies
                   WHERE tablename = 'schema_migrations' AND policyname = 'migrator_only') THEN
        CREATE POLICY migrator_only ON schema_migrations
            USING (current_user = session_user) WITH CHECK (current_user = session_user);
    END IF;
END
$$;
"""


async def apply_migrations(
    conn: asyncpg.Connection, migrations: Sequence[Migration] | None = None
) -> list[str]:
    """Apply every migration not yet recorded; return the names of those applied now."""
    todo = load_migrations() if migrations is None else list(migrations)
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        try:
            await conn.execute(_CREATE_ROLES)
        except asyncpg.InsufficientPrivilegeError as error:
            raise MigrationError(
                f"cannot create or grant the roles {', '.join(APP_ROLES)} as this login role "
                f"({error}); create them first as a superuser, as "
                "deploy/postgres/10-serenade-roles.sql does"
            ) from error
        await conn.execute(_CREATE_HISTORY)
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        applied = {row["version"]: row for row in rows}
        done: list[str] = []
        for migration in todo:
            recorded = applied.get(migration.version)
            if recorded is not None:
                if recorded["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"{migration.name} was changed after it was applied "
                        f"(applied as {recorded['name']}); add a new migration instead"
                    )
                continue
            await _apply_one(conn, migration)
            done.append(migration.name)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def _apply_one(conn: asyncpg.Connection, migration: Migration) -> None:
    async with conn.transaction():
        for statement in split_statements(migration.sql):
            try:
                await conn.execute(statement.sql)
            except asyncpg.PostgresError as error:
                excerpt = " ".join(statement.sql.split())
                if len(excerpt) > 300:
                    excerpt = excerpt[:297] + "..."
                raise MigrationError(
                    f"{migration.name}, statement at line {statement.line} failed: "
                    f"{type(error).__name__}: {error}\n  statement: {excerpt}"
                ) from error
        await conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            migration.version,
            migration.name,
            migration.checksum,
        )
