"""The API's unit of work: one transaction as the caller, bounded in time, and a nudge to the
outbox relay once a transaction that wrote events has committed."""

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg

from shared.db import Caller, transaction

__all__ = ["Database"]


@dataclass(frozen=True, slots=True)
class Database:
    pool: asyncpg.Pool
    # Called after a commit that wrote outbox rows (the relay's in-process wake-up).
    events_committed: Callable[[], None]
    # Seconds to wait for a connection: PostgreSQL unreachable is a prompt 503, never a hang.
    acquire_timeout: float = 5.0

    @contextlib.asynccontextmanager
    async def run_as(self, caller: Caller) -> AsyncIterator[asyncpg.Connection]:
        """One transaction as ``caller`` (role, claims and share token SET LOCAL)."""
        async with (
            self.pool.acquire(timeout=self.acquire_timeout) as conn,
            transaction(conn, caller),
        ):
            yield conn
