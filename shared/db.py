"""Database access: the asyncpg pool and the one way to run a unit of work as a caller.

Every query runs inside ``transaction(pool, caller)``, which takes the caller's PostgreSQL role
and claims for the transaction only, as PostgREST does, so row-level security decides what the
caller may see and write.
"""

from __future__ import annotations

import contextlib
import enum
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

__all__ = [
    "Caller",
    "Role",
    "act_as_service",
    "connect",
    "create_pool",
    "init_connection",
    "take_caller",
    "transaction",
]


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


async def take_caller(conn: asyncpg.Connection, caller: Caller) -> None:
    """Take ``caller``'s role, claims and share token until the current transaction ends."""
    await conn.execute(
        _TAKE_CALLER, caller.role.value, _encode_json(dict(caller.claims)), caller.share_token or ""
    )


@contextlib.asynccontextmanager
async def transaction(
    pool: asyncpg.Pool | asyncpg.Connection, caller: Caller
) -> AsyncIterator[asyncpg.Connection]:
    """One transaction run as ``caller``: role, claims and share token are all SET LOCAL."""
    if isinstance(pool, asyncpg.Connection):
        async with pool.transaction():
            await take_caller(pool, caller)
            yield pool
        return
    async with pool.acquire() as conn, conn.transaction():
        await take_caller(conn, caller)
        yield conn


async def act_as_service(conn: asyncpg.Connection) -> None:
    """Within the current transaction, continue as service_role.

    For the system's own writes (outbox rows, status resets) after the caller's own writes have
    passed their policies.
    """
    await take_caller(conn, Caller.service())
