"""How many groups a ``GroupCommit`` keeps in flight: the items that arrive while the groups in
flight commit wait and go together as the next group, and no more than ``max_transactions``
groups run at once (the API's orders run two, the generator's claims and completions one)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, cast

from shared.group_commit import GroupCommit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg


class _Groups:
    """Records each group it is given and holds it until ``release`` lets it commit."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._gates: list[asyncio.Event] = []
        self.started = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        yield cast("asyncpg.Connection", None)

    async def run(self, _: asyncpg.Connection, items: list[str]) -> list[str | None]:
        gate = asyncio.Event()
        async with self.started:
            self.groups.append(items)
            self._gates.append(gate)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.started.notify_all()
        await gate.wait()
        self.in_flight -= 1
        return [item.upper() for item in items]

    async def wait_for_groups(self, count: int) -> None:
        async with asyncio.timeout(5), self.started:
            await self.started.wait_for(lambda: len(self.groups) >= count)

    def release(self, index: int) -> None:
        self._gates[index].set()


def _group_commit(groups: _Groups, *, max_transactions: int) -> GroupCommit[str, str]:
    return GroupCommit(
        cast("asyncpg.Pool", None),
        groups.run,
        announce=lambda: None,
        transaction=groups.transaction,
        max_transactions=max_transactions,
    )


async def _submitted(group: GroupCommit[str, str], *items: str) -> list[asyncio.Task[Any]]:
    tasks = [asyncio.create_task(group.submit(item)) for item in items]
    await asyncio.sleep(0)  # they are submitted; a group starts on the loop's next pass
    return tasks


async def _passes(count: int = 5) -> None:
    """A few passes of the loop: a group starts on the pass after its items were submitted
    (``call_soon``), and its task runs on the one after."""
    for _ in range(count):
        await asyncio.sleep(0)


async def test_two_groups_in_flight_and_the_rest_wait_to_go_together() -> None:
    groups = _Groups()
    commit = _group_commit(groups, max_transactions=2)

    first = await _submitted(commit, "a")
    await groups.wait_for_groups(1)
    second = await _submitted(commit, "b")
    await groups.wait_for_groups(2)
    waiting = await _submitted(commit, "c", "d")
    await _passes()  # a wrong third group would have started by now
    assert groups.groups == [["a"], ["b"]]

    groups.release(0)
    assert await asyncio.gather(*first) == ["A"]
    await groups.wait_for_groups(3)
    assert groups.groups == [["a"], ["b"], ["c", "d"]]
    groups.release(1)
    groups.release(2)
    assert await asyncio.gather(*second, *waiting) == ["B", "C", "D"]
    assert groups.most_in_flight == 2


async def test_one_group_in_flight_holds_the_next_until_it_commits() -> None:
    groups = _Groups()
    commit = _group_commit(groups, max_transactions=1)

    first = await _submitted(commit, "a")
    await groups.wait_for_groups(1)
    waiting = await _submitted(commit, "b", "c")
    await _passes()  # a wrong second group would have started by now
    assert groups.groups == [["a"]]

    groups.release(0)
    await groups.wait_for_groups(2)
    groups.release(1)
    assert await asyncio.gather(*first, *waiting) == ["A", "B", "C"]
    assert groups.groups == [["a"], ["b", "c"]]
    assert groups.most_in_flight == 1
