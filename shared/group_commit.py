"""Group commits: the items that arrive together share one transaction.

A transaction's fixed cost (``BEGIN`` with the role, ``COMMIT`` and its flush to disk, the outbox
insert) was paid once per item. Here an item waits for no timer: it joins the group being
gathered while the group transaction in flight runs (``max_transactions``, one by default), so at
low load every item goes alone and at once, and under load the groups grow by themselves, up to
``max_items``. (Two at once left the groups small: a new one started whenever either finished;
measured, the generator's CPU per variant was then no lower than without groups.)

A group that fails as a whole (one bad row, a deadlock, a lost connection) answers None to each
of its items, and each caller then decides its item alone, in a transaction of its own, with the
per-item code: one bad row never fails its neighbours. A group may also leave an item to its
caller (None) when the batch's condition does not take it; nothing is settled for it here.
Callers answer or settle only after ``submit`` returns, that is after the commit.

Used by the generator (claims, completions) and by the API (orders, upsells, retries): generic,
so neither service imports the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Generic, TypeVar

from shared.db import Caller
from shared.unit_of_work import unit_of_work

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    import asyncpg

__all__ = ["GroupCommit"]

_log = logging.getLogger(__name__)
Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """Runs ``run(conn, items)`` for the items submitted together, in one transaction (by
    default a service_role unit of work on ``pool`` that calls ``announce`` once it committed
    events; ``transaction`` opens another kind, or hands a connection outside any transaction
    to a ``run`` that is one statement committing itself, as the API's orders: the context's
    clean exit must mean committed); ``run`` returns one result (or None: the caller's to
    decide) per item.

    ``pass_on``: failures of the group that are every item's answer rather than a reason to
    try each alone (the API's database outage: each alone would only wait for it again). They
    are raised from ``submit`` to the group's items and to the items waiting meanwhile.
    ``log``: the user's logger, which a failed group is logged to (by the service using it).
    ``on_commit``: told the size of each group that committed (a metric)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        run: Callable[[asyncpg.Connection, list[Item]], Awaitable[list[Result | None]]],
        *,
        announce: Callable[[], None],
        max_items: int = 64,
        max_transactions: int = 1,
        transaction: Callable[[], contextlib.AbstractAsyncContextManager[asyncpg.Connection]]
        | None = None,
        pass_on: tuple[type[BaseException], ...] = (),
        log: logging.Logger = _log,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self._pool = pool
        self._run = run
        self._announce = announce
        self._max_items = max_items
        self._max_transactions = max_transactions
        self._transaction = transaction or self._service_unit
        self._pass_on = pass_on
        self._log = log
        self._on_commit = on_commit
        self._waiting: list[tuple[Item, asyncio.Future[Result | None]]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._scheduled = False

    @contextlib.asynccontextmanager
    async def _service_unit(self) -> AsyncIterator[asyncpg.Connection]:
        # The relay is woken once the group's events are committed.
        async with unit_of_work(self._pool, Caller.service(), wake=self._announce) as uow:
            yield uow.conn

    async def submit(self, item: Item) -> Result | None:
        """The item's result once its group has committed; None when the group failed or left
        the item out (decide it alone). Raises nothing of the group's but ``pass_on``."""
        future: asyncio.Future[Result | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._schedule()
        return await future

    def _schedule(self) -> None:
        if not self._scheduled and len(self._running) < self._max_transactions:
            self._scheduled = True
            # On the next pass of the loop: items submitted in this pass join the group.
            asyncio.get_running_loop().call_soon(self._start)

    def _start(self) -> None:
        self._scheduled = False
        while self._waiting and len(self._running) < self._max_transactions:
            group = self._waiting[: self._max_items]
            del self._waiting[: self._max_items]
            task = asyncio.get_running_loop().create_task(self._commit(group))
            self._running.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._waiting:
            self._schedule()

    async def _commit(self, group: list[tuple[Item, asyncio.Future[Result | None]]]) -> None:
        results: list[Result | None]
        try:
            try:
                async with self._transaction() as conn:
                    results = await self._run(conn, [item for item, _ in group])
                if self._on_commit is not None:
                    self._on_commit(len(group))
            except self._pass_on as error:
                # Those waiting meanwhile would meet the same failure after a wait of their
                # own: they are answered now, within the one wait their group took.
                waiting = self._waiting
                self._waiting = []
                for _, future in (*group, *waiting):
                    if not future.done():
                        future.set_exception(error)
                return
            except Exception as error:  # noqa: BLE001 - each item is then decided alone
                self._log.info("a group of %d failed, each goes alone: %r", len(group), error)
                results = [None] * len(group)
        except BaseException:
            for _, future in group:
                future.cancel()
            raise
        for (_, future), result in zip(group, results, strict=True):
            if not future.done():  # its caller may have been cancelled meanwhile
                future.set_result(result)
