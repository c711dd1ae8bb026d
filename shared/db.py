"""Database access: the asyncpg pool and the one way to run a unit of work as a caller.

Every query runs inside ``transaction(pool, caller)``, which takes the caller's PostgreSQL role
and claims for the transaction only, as PostgREST does, so row-level security decides what the
caller may see and write. The API's reads are one statement instead: a function of migration
0100 that takes the same three settings (``caller_args``) for that statement only.
"""

from __future__ import annotations

import contextlib
import enum
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from shared.compat import keep_session

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

__all__ = [
    "DATABASE_ERRORS",
    "DATABASE_UNREACHABLE",
    "Caller",
    "Role",
    "act_as_service",
    "caller_args",
    "connect",
    "create_pool",
    "init_connection",
    "take_caller",
    "transaction",
]


# What losing PostgreSQL raises (refused, reset, timed out, shutting down, out of slots), as
# opposed to a fault of the statement or the code: a 503 for the API, a closed intake for the
# generator. (TimeoutError is an OSError; it is named for the reader.)
DATABASE_UNREACHABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # A pooled connection whose server stopped under it can fail its next statement with
    # "cannot switch to state ...; another operation is in progress" (found by the payments
    # webhook test that stops PostgreSQL): the connection is lost, not the statement wrong.
    asyncpg.InternalClientError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)
# Any failure of the database, unreachable or refusing a statement: what a background loop that
# must outlive it (the outbox relay, the reminders) or a command reporting it catches.
DATABASE_ERRORS: tuple[type[Exception], ...] = (*DATABASE_UNREACHABLE, asyncpg.PostgresError)


class Role(enum.StrEnum):
    """The three PostgreSQL roles a request can take."""

    ANON = "anon"
    AUTHENTICATED = "authenticated"
    SERVICE = "service_role"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: a role, the JWT claims, and (anon share lookups) a presented share token."""

    role: Role
    claims: Mapping[str, Any] = field(default_factory=dict)
    share_token: str | None = None

    @classmethod
    def anon(cls, share_token: str | uuid.UUID | None = None) -> Caller:
        token = None if share_token is None else str(share_token)
        return cls(Role.ANON, {"role": Role.ANON.value}, token)

    @classmethod
    def user(cls, user_id: uuid.UUID, claims: Mapping[str, Any] | None = None) -> Caller:
        merged = {"role": Role.AUTHENTICATED.value, "aud": "authenticated", **(claims or {})}
        merged["sub"] = str(user_id)
        return cls(Role.AUTHENTICATED, merged)

    @classmethod
    def service(cls) -> Caller:
        return cls(Role.SERVICE, {"role": Role.SERVICE.value})

    @property
    def user_id(self) -> uuid.UUID | None:
        sub = self.claims.get("sub")
        try:
            return uuid.UUID(str(sub)) if sub is not None else None
        except ValueError:
            return None


def _encode_json(value: Any) -> str:
    return orjson.dumps(value).decode()


async def init_connection(conn: asyncpg.Connection) -> None:
    """Codecs for every connection: json and jsonb as Python objects."""
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, schema="pg_catalog", encoder=_encode_json, decoder=orjson.loads
        )


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, command_timeout: float = 30.0
) -> asyncpg.Pool:
    """A pool whose connections have serenade's codecs. Made in a lifespan, never at import."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        reset=keep_session,
        command_timeout=command_timeout,
    )
    assert pool is not None
    return pool


async def connect(dsn: str, *, timeout: float = 10.0) -> asyncpg.Connection:
    """One connection with serenade's codecs (CLI commands, LISTEN)."""
    conn = await asyncpg.connect(dsn, timeout=timeout)
    await init_connection(conn)
    return conn


_TAKE_CALLER = """
SELECT set_config('role', $1, true),
       set_config('request.jwt.claims', $2, true),
       set_config('request.share_token', $3, true)
"""


def caller_args(caller: Caller) -> tuple[str, str, str]:
    """``caller`` as the three settings it takes: role, claims (JSON) and share token ('' for
    none). Also the first three arguments of the read functions (migration 0100), which take
    the caller themselves."""
    return caller.role.value, _encode_json(dict(caller.claims)), caller.share_token or ""


async def take_caller(conn: asyncpg.Connection, caller: Caller) -> None:
    """Take ``caller``'s role, claims and share token until the current transaction ends."""
    await conn.execute(_TAKE_CALLER, *caller_args(caller))


def _literal(text: str) -> str:
    """``text`` as an SQL string literal in escape syntax (``E'...'``): backslashes and quotes
    doubled, so that its meaning does not depend on ``standard_conforming_strings``."""
    if "\x00" in text:
        raise ValueError("PostgreSQL text cannot hold NUL")
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _begin_as(caller: Caller) -> str:
    """BEGIN and the caller's settings as one simple-protocol message (several statements, no
    parameters, no rows back): one round trip where BEGIN and a parameterised set_config took
    two. SET LOCAL is set_config(..., true); the values are literals quoted by ``_literal``: a
    role name, claims that orjson wrote, a share token."""
    return (
        "BEGIN; SET LOCAL ROLE {}; SET LOCAL request.jwt.claims = {};"
        " SET LOCAL request.share_token = {}"
    ).format(
        _literal(caller.role.value),
        _literal(_encode_json(dict(caller.claims))),
        _literal(caller.share_token or ""),
    )


@contextlib.asynccontextmanager
async def _as_caller(conn: asyncpg.Connection, caller: Caller) -> AsyncIterator[None]:
    if conn.is_in_transaction():
        begin, commit, rollback = "SAVEPOINT serenade", "RELEASE serenade", "ROLLBACK TO serenade"
        await conn.execute(begin)
        await take_caller(conn, caller)
    else:
        commit, rollback = "COMMIT", "ROLLBACK"
        await conn.execute(_begin_as(caller))
    try:
        yield
    except BaseException:
        if not conn.is_closed():
            await conn.execute(rollback)
        raise
    await conn.execute(commit)


@contextlib.asynccontextmanager
async def transaction(
    pool: asyncpg.Pool | asyncpg.Connection, caller: Caller
) -> AsyncIterator[asyncpg.Connection]:
    """One transaction run as ``caller``: role, claims and share token are all SET LOCAL.

    Begun by hand, BEGIN and the settings in one round trip, so asyncpg refuses
    ``conn.transaction()`` inside it: nest ``transaction(conn, ...)`` instead, which (like it
    does inside any open transaction) takes a savepoint.
    """
    if isinstance(pool, asyncpg.Connection):
        async with _as_caller(pool, caller):
            yield pool
        return
    async with pool.acquire() as conn, _as_caller(conn, caller):
        yield conn


async def act_as_service(conn: asyncpg.Connection) -> None:
    """Within the current transaction, continue as service_role.

    For the system's own writes (outbox rows, status resets) after the caller's own writes have
    passed their policies.
    """
    await take_caller(conn, Caller.service())
