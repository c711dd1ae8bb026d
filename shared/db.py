"""Database access: the asyncpg pool and the one way to run a unit of work as a caller.

Every query runs inside ``transaction(pool, caller)``, which takes the caller's PostgreSQL role
and claims for the transaction only, as PostgREST does, so row-level security decides what the
caller may see and write. BEGIN and the settings are one message, and so are COMMIT and the
rows deferred to it (``insert_at_commit``: a transaction's outbox rows). The API's reads are one
statement instead: a function of migration 0100 that takes the same three settings
(``caller_args``) for that statement only.
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
    "insert_at_commit",
    "sql_literal",
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


def sql_literal(text: str) -> str:
    """``text`` as an SQL string literal in escape syntax (``E'...'``): backslashes and quotes
    doubled, so that its meaning does not depend on ``standard_conforming_strings``."""
    if "\x00" in text:
        raise ValueError("PostgreSQL text cannot hold NUL")
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _begin_as(caller: Caller) -> str:
    """BEGIN and the caller's settings as one simple-protocol message (several statements, no
    parameters, no rows back): one round trip where BEGIN and a parameterised set_config took
    two. SET LOCAL is set_config(..., true); the values are literals quoted by ``sql_literal``: a
    role name, claims that orjson wrote, a share token."""
    return (
        "BEGIN; SET LOCAL ROLE {}; SET LOCAL request.jwt.claims = {};"
        " SET LOCAL request.share_token = {}"
    ).format(
        sql_literal(caller.role.value),
        sql_literal(_encode_json(dict(caller.claims))),
        sql_literal(caller.share_token or ""),
    )


@dataclass(slots=True)
class _Level:
    """A transaction or savepoint that ``_as_caller`` began, and the rows its commit is to insert
    (``insert_at_commit``): per statement head, the rows as literal tuples, in the order given."""

    inserts: dict[str, list[str]] = field(default_factory=dict)

    def take(self, head: str, rows: list[str]) -> None:
        self.inserts.setdefault(head, []).extend(rows)


# The levels open on each connection whose transaction ``_as_caller`` began (by identity, as
# shared.unit_of_work's units), outermost first. A connection whose transaction another began
# (asyncpg's ``conn.transaction()``) has none: nothing is deferred on it.
_levels: dict[int, list[_Level]] = {}


def insert_at_commit(conn: asyncpg.Connection, head: str, rows: list[str]) -> bool:
    """Have ``rows`` inserted as service_role by the message that commits the outermost
    transaction ``transaction`` began on ``conn``, after the rows deferred before them: an
    insert that costs no round trip of its own. ``head`` is ``INSERT INTO t (a, b) VALUES``,
    each row a tuple of SQL literals (``sql_literal``); the rows of one head are one statement.
    Rows deferred in a savepoint that is rolled back to are dropped with it. False, and nothing
    deferred, when ``conn`` has no such transaction: the caller inserts them itself, at once."""
    levels = _levels.get(id(conn))
    if not levels:
        return False
    levels[-1].take(head, rows)
    return True


def _commit_message(level: _Level) -> str:
    """COMMIT after the deferred inserts, as one simple-protocol message: its statements run in
    order, and an error skips the rest (the COMMIT too), leaving the transaction aborted. The
    rows are the system's own (the outbox, whose policies admit service_role alone) while the
    transaction may end as any caller (a group commit takes each item's): the role is taken in
    the same message, for its last statements."""
    if not level.inserts:
        return "COMMIT"
    inserts = "; ".join(f"{head} {', '.join(rows)}" for head, rows in level.inserts.items())
    return f"SET LOCAL ROLE service_role; {inserts}; COMMIT"


async def _commit(conn: asyncpg.Connection, level: _Level) -> None:
    try:
        await conn.execute(_commit_message(level))
    except asyncpg.PostgresError:
        # A deferred insert failed: the COMMIT after it never ran. Rolled back here (a failed
        # COMMIT itself ends the transaction), so that the connection is usable again.
        if not conn.is_closed() and conn.is_in_transaction():
            await conn.execute("ROLLBACK")
        raise


@contextlib.asynccontextmanager
async def _as_caller(conn: asyncpg.Connection, caller: Caller) -> AsyncIterator[None]:
    key = id(conn)
    outermost = not conn.is_in_transaction()
    levels: list[_Level] | None
    if outermost:
        rollback = "ROLLBACK"
        await conn.execute(_begin_as(caller))
        levels = _levels[key] = []
    else:
        rollback = "ROLLBACK TO serenade"
        await conn.execute("SAVEPOINT serenade")
        await take_caller(conn, caller)
        levels = _levels.get(key)
    level = _Level()
    if levels is not None:
        levels.append(level)
    try:
        try:
            yield
        except BaseException:
            # Its deferred rows are dropped with it (``finally``).
            if not conn.is_closed():
                await conn.execute(rollback)
            raise
        if outermost:
            await _commit(conn, level)
        else:
            await conn.execute("RELEASE serenade")
            if levels is not None:
                # Released: its rows are the enclosing level's, after those deferred before.
                for head, rows in level.inserts.items():
                    levels[-2].take(head, rows)
    finally:
        if levels is not None:
            levels.pop()
            if outermost:
                del _levels[key]


@contextlib.asynccontextmanager
async def transaction(
    pool: asyncpg.Pool | asyncpg.Connection, caller: Caller
) -> AsyncIterator[asyncpg.Connection]:
    """One transaction run as ``caller``: role, claims and share token are all SET LOCAL.

    Begun by hand, BEGIN and the settings in one round trip, so asyncpg refuses
    ``conn.transaction()`` inside it: nest ``transaction(conn, ...)`` instead, which (like it
    does inside any open transaction) takes a savepoint. Ended as one round trip too: the rows
    deferred to it (``insert_at_commit``: the outbox's) travel in the COMMIT's message.
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
