"""Console sessions and refused sign-ins, kept in PostgreSQL (``console_sessions``,
``console_sign_in_failures``): any API process serves any operator, and a sign-out revokes the
session for all of them at once.

The cookie carries a random secret; the table keeps only its SHA-256, so a copy of the table
signs no one in. Each session has its own CSRF token (a synchronizer token) that every
state-changing form carries. Run these inside a service_role transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Final

import asyncpg

__all__ = [
    "FAILURE_WINDOW",
    "MAX_FAILURES",
    "MAX_SESSION",
    "ConsoleSession",
    "find_session",
    "open_session",
    "recent_failures",
    "record_failure",
    "revoke_session",
]

# A session never outlives its token, nor this.
MAX_SESSION: Final = dt.timedelta(hours=12)
# Refused sign-ins from one client within FAILURE_WINDOW before it must wait.
MAX_FAILURES: Final = 10
FAILURE_WINDOW: Final = dt.timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    id: uuid.UUID
    csrf_token: str
    expires_at: dt.datetime


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


async def open_session(
    conn: asyncpg.Connection,
    *,
    token_expires_at: dt.datetime,
    token_id: str | None,
    client: str,
    replacing: str | None,
) -> tuple[str, ConsoleSession]:
    """A new session (and the cookie secret that names it); the one the browser brought, if
    any, is revoked: a sign-in never reuses a session."""
    if replacing:
        await revoke_session(conn, replacing)
    # Sweep sessions that ended a day ago: the table stays the size of the active operators.
    await conn.execute("DELETE FROM console_sessions WHERE expires_at < now() - interval '1 day'")
    secret = secrets.token_urlsafe(32)
    row = await conn.fetchrow(
        """
        INSERT INTO console_sessions (secret_hash, csrf_token, token_id, client, expires_at)
        VALUES ($1, $2, $3, $4, least($5, now() + $6))
        RETURNING id, csrf_token, expires_at
        """,
        _hash(secret),
        secrets.token_urlsafe(32),
        token_id,
        client,
        token_expires_at,
        MAX_SESSION,
    )
    assert row is not None
    return secret, ConsoleSession(row["id"], row["csrf_token"], row["expires_at"])


async def find_session(conn: asyncpg.Connection, secret: str) -> ConsoleSession | None:
    """The live session this cookie secret names: not revoked, not expired."""
    row = await conn.fetchrow(
        "SELECT id, csrf_token, expires_at FROM console_sessions"
        " WHERE secret_hash = $1 AND revoked_at IS NULL AND expires_at > now()",
        _hash(secret),
    )
    if row is None:
        return None
    return ConsoleSession(row["id"], row["csrf_token"], row["expires_at"])


async def revoke_session(conn: asyncpg.Connection, secret: str) -> None:
    await conn.execute(
        "UPDATE console_sessions SET revoked_at = now()"
        " WHERE secret_hash = $1 AND revoked_at IS NULL",
        _hash(secret),
    )


async def recent_failures(conn: asyncpg.Connection, client: str) -> int:
    """Refused sign-ins from ``client`` within the window."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM console_sign_in_failures"
        " WHERE client = $1 AND failed_at > now() - $2::interval",
        client,
        FAILURE_WINDOW,
    )
    return count


async def record_failure(conn: asyncpg.Connection, client: str, reason: str) -> None:
    await conn.execute(
        "DELETE FROM console_sign_in_failures WHERE failed_at < now() - interval '1 day'"
    )
    await conn.execute(
        "INSERT INTO console_sign_in_failures (client, reason) VALUES ($1, $2)",
        client,
        reason[:500],
    )
