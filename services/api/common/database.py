"""The API's unit of work: one transaction as the caller, bounded in time, and a nudge to the
outbox relay once a transaction that wrote events has committed (``shared.unit_of_work``: the
wake follows every outbox write on the connection, by construction). And the group commits of
the writes that arrive together (``group``), and the reads: one statement outside any
transaction, calling a function that takes the caller itself (``reading``; the orders' group
is such a statement too, a write: ``committing``)."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import asyncpg

from shared.db import DATABASE_UNREACHABLE, Caller, transaction
from shared.group_commit import GroupCommit
from shared.unit_of_work import writing_events

__all__ = ["Database", "GroupRun"]

Item = TypeVar("Item")
Result = TypeVar("Result")
# Writes the items of one group on a service_role connection in its transaction (or, for a
# group of ``one_statement``, in one statement outside any); one result (or None: that item is
# then written alone, by the per-item code) per item.
GroupRun = Callable[[asyncpg.Connection, list[Item]], Awaitable[list[Result | None]]]
_log = logging.getLogger(__name__)
# Groups of one statement that may be in flight at once. With one, the requests that arrived
# meanwhile waited, parsed, while PostgreSQL ran the group on one backend, and the API process
# idled: POST alone ran at 614-640/s with one and 699-725/s with two to four (16 clients, issue
# 14's sixth round). A second group uses PostgreSQL's other core.
_STATEMENT_GROUPS_IN_FLIGHT = 2


@dataclass(frozen=True, slots=True)
class Database:
    pool: asyncpg.Pool
    # Called after a commit that wrote outbox rows (the relay's wake-up); never by hand.
    events_committed: Callable[[], None]
    # Seconds to wait for a connection: PostgreSQL unreachable is a prompt 503, never a hang.
    acquire_timeout: float = 5.0
    # Told each committed group's kind (its ``GroupRun``'s name: create, upsell, retry) and size.
    group_committed: Callable[[str, int], None] | None = None
    # One group commit per kind of write (its ``GroupRun``), made on first use.
    _groups: dict[object, GroupCommit[Any, Any]] = field(default_factory=dict, repr=False)

    def group(
        self, run: GroupRun[Item, Result], *, one_statement: bool = False
    ) -> GroupCommit[Item, Result]:
        """The group commit of ``run``: the items submitted while the group in flight commits
        are written together, in one transaction as service_role (``run`` takes each item's
        caller for its rows). A group that fails is rolled back and each of its items is
        answered None (write it alone, exactly as without groups); PostgreSQL unreachable is
        raised to each instead (a 503 within the one bounded wait, not a second one alone).

        ``one_statement``: ``run`` is one statement that takes its callers and commits itself
        (a function of migration 0120), handed a connection outside any transaction
        (``committing``): one round trip where BEGIN, the writes and COMMIT took several;
        two such groups may be in flight at once. Fixed by the first call for ``run``."""
        group = self._groups.get(run)
        if group is None:
            group = self._groups[run] = GroupCommit(
                self.pool,
                run,
                announce=self.events_committed,
                transaction=self.committing
                if one_statement
                else lambda: self.run_as(Caller.service()),
                pass_on=DATABASE_UNREACHABLE,
                max_transactions=_STATEMENT_GROUPS_IN_FLIGHT if one_statement else 1,
                log=_log,
                on_commit=self._counting(run.__name__.strip("_").removesuffix("_group")),
            )
        return cast("GroupCommit[Item, Result]", group)

    def _counting(self, kind: str) -> Callable[[int], None] | None:
        committed = self.group_committed
        if committed is None:
            return None
        return lambda size: committed(kind, size)

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

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection outside any transaction, for one call of a read function of migration
        0100 (``api.get_order``...), which takes the caller itself: one round trip. Acting as
        itself the login role sees no row of any table (row-level security is forced and has
        no policy for it), so nothing else belongs here. Bounded in time as ``run_as``."""
        async with asyncio.timeout(self.acquire_timeout):
            conn = await self.pool.acquire()
        try:
            yield conn
        except (TimeoutError, asyncio.CancelledError):
            conn.terminate()  # PostgreSQL did not answer in time: as in run_as
            raise
        finally:
            await self.pool.release(conn)

    @contextlib.asynccontextmanager
    async def committing(self) -> AsyncIterator[asyncpg.Connection]:
        """``reading``'s connection, for one call of a write function that takes its callers
        itself and commits as it returns (its statement's implicit transaction: migration
        0120's ``api.create_orders``). The relay is woken after it, when the statement wrote
        events (``outbox_written``), as ``run_as`` does after its commit."""
        async with self.reading() as conn:
            with writing_events(conn) as unit:
                yield conn
        if unit.wrote_events:
            self.events_committed()
