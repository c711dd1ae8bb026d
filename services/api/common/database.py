"""The API's unit of work: one transaction as the caller, bounded in time, and a nudge to the
outbox relay once a transaction that wrote events has committed (``shared.unit_of_work``: the
wake follows every outbox write on the connection, by construction)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg

from shared.db import Caller, transaction
from shared.unit_of_work import writing_events

__all__ = ["Database"]


@dataclass(frozen=True, slots=True)
class Database:
    pool: asyncpg.Pool
    # Called after a commit that wrote outbox rows (the relay's wake-up); never by hand.
    events_committed: Callable[[], None]
    # Seconds to wait for a connection: PostgreSQL unreachable is a prompt 503, never a hang.
    acquire_timeout: float = 5.0

    @contextlib.asynccontextmanager
    async def run_as(self, caller: Caller) -> AsyncIterator[asyncpg.Connection]:
        """One transaction as ``caller`` (role, claims and share token SET LOCAL)."""
        # A timeout scope, not acquire(timeout=): that wraps the wait in a task of its own
        # (asyncio.wait_for), one more task and loop turn per request.
        async with asyncio.timeout(self.acquire_timeout):
            conn = await self.pool.acquire()
        try:
            async with transaction(conn, caller):
                try:
                    with writing_events(conn) as unit:
                        yield conn
                except (TimeoutError, asyncio.CancelledError):
                    # PostgreSQL did not answer in time (frozen, or its packets lost): it will
                    # not answer the ROLLBACK either, and waiting for that too doubled the wait
                    # before the 503. Drop the connection at once; the server ends the
                    # transaction when it notices, and the pool opens a new connection.
                    conn.terminate()
                    raise
        except (TimeoutError, asyncio.CancelledError):
            conn.terminate()  # also when BEGIN itself timed out
            raise
        finally:
            await self.pool.release(conn)
        if unit.wrote_events:
            self.events_committed()
