"""The generator's group commits: the claims (and the completions) that arrive together share one
transaction (``shared.group_commit.GroupCommit``: no timer, one group in flight, a failed group
decided item by item). Callers settle their messages only after ``submit`` returns, that is
after the commit.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared import lifecycle
from shared.group_commit import GroupCommit
from shared.unit_of_work import enqueue

if TYPE_CHECKING:
    import uuid
    from collections.abc import Callable

    import asyncpg

    from shared.events import Event

__all__ = ["ClaimRequest", "Completed", "GroupCommit", "PipelineGroups"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    variant_id: uuid.UUID
    redelivered: bool
    correlation_id: str | None


@dataclass(frozen=True, slots=True)
class Completed:
    """What ``complete_variant`` said for one variant, and whether it failed meanwhile (a
    superseded attempt whose variant failed: the audio just stored belongs to nothing)."""

    events: list[Event]
    failed_meanwhile: bool


def _alone(ids: list[uuid.UUID]) -> set[uuid.UUID] | None:
    """The ids that occur once: a variant twice in one group is decided alone, in turn. None
    when every id occurs once (the usual group: nothing to count, nothing to leave out)."""
    distinct = set(ids)
    if len(distinct) == len(ids):
        return None
    counts = collections.Counter(ids)
    return {variant_id for variant_id, count in counts.items() if count == 1}


async def claim_group(
    conn: asyncpg.Connection, items: list[ClaimRequest], *, max_attempts: int
) -> list[lifecycle.StartedAttempt | None]:
    """Start an attempt on every plainly claimable variant of the group; the outbox rows of
    all of them in one insert. The rest (None) are decided alone by the per-item claim."""
    single = _alone([item.variant_id for item in items])
    taken = items if single is None else [item for item in items if item.variant_id in single]
    started = await lifecycle.start_attempts(
        conn,
        sorted(item.variant_id for item in taken),
        redelivered=[item.variant_id for item in taken if item.redelivered],
        max_attempts=max_attempts,
        correlation_ids={item.variant_id: item.correlation_id for item in taken},
    )
    results = [
        started.get(item.variant_id) if single is None or item.variant_id in single else None
        for item in items
    ]
    await enqueue(conn, *(result.event for result in results if result is not None))
    return results


async def complete_group(
    conn: asyncpg.Connection, items: list[lifecycle.Completion]
) -> list[Completed | None]:
    """Complete the group's variants (statuses and order completions), one outbox insert."""
    single = _alone([item.variant_id for item in items])
    taken = items if single is None else [item for item in items if item.variant_id in single]
    events, ordered = await lifecycle.complete_variants(conn, taken)
    await enqueue(conn, *ordered)
    superseded = [variant_id for variant_id, said in events.items() if not said]
    failed = await lifecycle.failed_among(conn, superseded) if superseded else set()
    return [
        Completed(events[item.variant_id], item.variant_id in failed)
        if single is None or item.variant_id in single
        else None
        for item in items
    ]


@dataclass(frozen=True, slots=True)
class PipelineGroups:
    """The pipeline's two group commits: claims and completions."""

    claims: GroupCommit[ClaimRequest, lifecycle.StartedAttempt]
    completions: GroupCommit[lifecycle.Completion, Completed]

    @classmethod
    def create(
        cls, pool: asyncpg.Pool, *, max_attempts: int, announce: Callable[[], None]
    ) -> PipelineGroups:
        async def claims(
            conn: asyncpg.Connection, items: list[ClaimRequest]
        ) -> list[lifecycle.StartedAttempt | None]:
            return await claim_group(conn, items, max_attempts=max_attempts)

        return cls(
            claims=GroupCommit(pool, claims, announce=announce, log=_log),
            completions=GroupCommit(pool, complete_group, announce=announce, log=_log),
        )
