"""Databases on a PostgreSQL server: made (fresh, or once by name) and migrated."""

from __future__ import annotations

import uuid

from shared.db import connect
from shared.migrations import apply_migrations

__all__ = ["create_database", "ensure_database", "migrate", "with_database"]


def with_database(dsn: str, database: str) -> str:
    """``dsn`` with its database name replaced."""
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{database}"


async def migrate(dsn: str) -> list[str]:
    """Apply pending migrations; the names of those applied."""
    conn = await connect(dsn)
    try:
        return await apply_migrations(conn)
    finally:
        await conn.close()


async def create_database(
    admin_dsn: str, *, prefix: str = "serenade", migrated: bool = True
) -> str:
    """A new database with a unique name (by default migrated); its DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = with_database(admin_dsn, name)
    if migrated:
        await migrate(dsn)
    return dsn


async def ensure_database(admin_dsn: str, name: str) -> str:
    """The database ``name``, created when missing (not migrated); its DSN."""
    admin = await connect(admin_dsn)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return with_database(admin_dsn, name)
