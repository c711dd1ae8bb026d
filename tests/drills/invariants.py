"""What must hold after every drill, checked in the database, the storage folder and the stream.

First the stack is given time to settle (every variant final, the outbox empty, every consumer
caught up), with a deadline; then:

- every accepted order (201, or 200 for a replayed key) exists with all its variants (``lost``);
- every variant is final, nothing waits in the outbox or a consumer (``stuck``);
- a complete variant has its one file, at the seed's layout; no variant has two files; no file
  belongs to nothing (``lost``, ``duplicated``, ``leaked``); a failed variant's own file, left
  by an attempt lost after it stored its audio, is counted (``stale_files``), not a failure;
- each order has exactly one ``orders.created`` and one ``orders.completed`` (with the outcome
  the database shows), each variant at least one ``variants.requested`` (``lost``,
  ``duplicated``);
- no event id is in the stream twice, and each variant's status events follow its lifecycle,
  ending where the database stands (``duplicated``, ``inconsistent``);
- every failed variant has a failed_jobs row, and no complete variant has an open one (``lost``,
  ``inconsistent``).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nats.errors import Error as NatsError

from services.deadletter.consumers import ADVISORY_DURABLE, ENVELOPE_DURABLE
from services.generator.consumer import DURABLE as GENERATOR_DURABLE
from shared.events import (
    STREAM_NAME,
    SUBJECT_ORDER_COMPLETED,
    SUBJECT_ORDER_CREATED,
    SUBJECT_VARIANT_REQUESTED,
    SUBJECT_VARIANT_STATUS,
)
from shared.stream import ADVISORY_STREAM
from tests.drills.streamscan import StreamMessage, read_stream

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    import asyncpg

    from tests.drills.load import Accepted
    from tests.drills.stack import Stack

__all__ = ["Observation", "Verdict", "check_invariants", "observe", "processing_gap", "settle"]

_FINAL = frozenset({"complete", "failed"})
_PUBLISHED = frozenset({SUBJECT_ORDER_CREATED, SUBJECT_ORDER_COMPLETED, SUBJECT_VARIANT_STATUS})
_SHOWN_PROBLEMS = 25


@dataclass
class Verdict:
    orders: int = 0
    variants: int = 0
    complete: int = 0
    failed: int = 0
    lost: int = 0
    duplicated: int = 0
    leaked: int = 0
    stuck: int = 0
    inconsistent: int = 0
    settle_s: float = 0.0
    gap_s: float = 0.0
    stale_files: int = 0
    problems: list[str] = field(default_factory=list)

    def flag(self, kind: str, text: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        self.problems.append(f"{kind}: {text}")

    @property
    def ok(self) -> bool:
        return not self.problems

    def figures(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "variants": self.variants,
            "failed": self.failed,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "leaked": self.leaked,
            "stale_files": self.stale_files,
            "stuck": self.stuck,
            "inconsistent": self.inconsistent,
        }

    def report(self) -> str:
        shown = self.problems[:_SHOWN_PROBLEMS]
        more = len(self.problems) - len(shown)
        return "\n".join(shown + ([f"... and {more} more"] if more > 0 else []))


# --- settling ---------------------------------------------------------------------------------
# Upstream of the outbox: what these consumers handle may write to it (a dead letter, a failed
# variant's events). Downstream of it: the envelope consumer, which only stores rows.
_UPSTREAM = ((STREAM_NAME, GENERATOR_DURABLE), (ADVISORY_STREAM, ADVISORY_DURABLE))
_DOWNSTREAM = ((STREAM_NAME, ENVELOPE_DURABLE),)


@dataclass(frozen=True)
class Observation:
    """One look at the stack: what is still to do, and marks that move whenever work does."""

    unfinished: int
    unsent: int
    backlog: int
    # The outbox's last id and each stream's last sequence: a handoff between two reads of one
    # look (a commit, a publish) shows in the next look as a moved mark.
    marks: tuple[int, ...]

    @property
    def counts(self) -> tuple[int, int, int]:
        return self.unfinished, self.unsent, self.backlog

    @property
    def quiet(self) -> bool:
        return self.counts == (0, 0, 0)


async def _backlog(stack: Stack, consumers: Iterable[tuple[str, str]]) -> int:
    backlog = 0
    for stream, consumer in consumers:
        info = await stack.js.consumer_info(stream, consumer)
        backlog += (info.num_pending or 0) + (info.num_ack_pending or 0)
    return backlog


async def observe(stack: Stack) -> Observation:
    """Read the stack in the order work flows through it: the consumers that write to the outbox,
    then the database, then the streams, then the consumer that reads what the outbox sends.

    Work handed on between two reads is then still seen downstream (a generator commits its
    dead letter before it acks, the relay publishes before it marks the row sent). Read the
    other way round, a dead letter committed after the database was read and acknowledged
    before the generator was, not yet published, was in none of the places looked at.
    """
    backlog = await _backlog(stack, _UPSTREAM)
    async with stack.admin() as conn:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM song_variants WHERE status NOT IN ('complete', 'failed'))"
            " AS unfinished, (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS unsent,"
            " (SELECT coalesce(max(id), 0) FROM outbox) AS last_outbox_id"
        )
    assert row is not None
    streams = [await stack.js.stream_info(name) for name in (STREAM_NAME, ADVISORY_STREAM)]
    backlog += await _backlog(stack, _DOWNSTREAM)
    return Observation(
        unfinished=int(row["unfinished"]),
        unsent=int(row["unsent"]),
        backlog=backlog,
        marks=(int(row["last_outbox_id"]), *(int(info.state.last_seq) for info in streams)),
    )


async def settle(
    stack: Stack,
    *,
    timeout: float,
    interval: float = 0.2,
    look: Callable[[Stack], Awaitable[Observation]] = observe,
) -> tuple[bool, float, tuple[int, int, int]]:
    """Wait (up to ``timeout`` s) until every variant is final, the outbox is empty and every
    consumer has caught up. Returns whether it settled, how long it took, and the last counts
    (unfinished variants, unsent events, consumer backlog).

    Settled means two looks in a row found nothing to do and no mark moved between them: one
    quiet look is not proof, as its reads are not one snapshot of the whole stack."""
    started = time.monotonic()
    last: tuple[int, int, int] = (-1, -1, -1)
    previous: Observation | None = None
    while True:
        try:
            seen: Observation | None = await look(stack)
        except (OSError, NatsError, TimeoutError) as error:
            seen = None
            if time.monotonic() - started > timeout:
                raise AssertionError(f"cannot observe the stack: {error!r}") from error
        last = seen.counts if seen is not None else (-1, -1, -1)
        if seen is not None and seen.quiet and previous == seen:
            return True, time.monotonic() - started, last
        previous = seen if seen is not None and seen.quiet else None
        if time.monotonic() - started > timeout:
            return False, time.monotonic() - started, last
        await asyncio.sleep(interval)


# --- the checks --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Snapshot:
    orders: dict[uuid.UUID, asyncpg.Record]
    variants: list[asyncpg.Record]
    jobs: list[asyncpg.Record]
    unsent: int


async def _snapshot(stack: Stack) -> _Snapshot:
    async with stack.admin() as conn:
        orders = {row["id"]: row for row in await conn.fetch("SELECT id, user_id FROM orders")}
        variants = await conn.fetch(
            "SELECT id, order_id, variant_number, status::text AS status, storage_path, attempts,"
            " completed_at FROM song_variants ORDER BY order_id, variant_number"
        )
        jobs = await conn.fetch("SELECT id, variant_id, resolved_at, error_type FROM failed_jobs")
        unsent = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    return _Snapshot(orders, list(variants), list(jobs), int(unsent))


async def check_invariants(
    stack: Stack, accepted: dict[uuid.UUID, Accepted], *, timeout: float = 60.0
) -> Verdict:
    """Settle, then check everything above; the verdict lists every problem found."""
    verdict = Verdict(orders=len(accepted))
    settled, verdict.settle_s, last = await settle(stack, timeout=timeout)
    snapshot = await _snapshot(stack)
    messages = await read_stream(stack.js)
    verdict.variants = len(snapshot.variants)
    verdict.complete = sum(v["status"] == "complete" for v in snapshot.variants)
    verdict.failed = sum(v["status"] == "failed" for v in snapshot.variants)
    if not settled:
        verdict.flag(
            "stuck",
            f"not settled after {timeout:.0f} s: {last[0]} unfinished variant(s),"
            f" {last[1]} unsent event(s), {last[2]} message(s) in consumers",
        )
    _check_orders(verdict, snapshot, accepted)
    _check_files(verdict, snapshot, stack)
    _check_events(verdict, snapshot, messages, max_attempts=stack.settings.max_attempts)
    _check_failures(verdict, snapshot)
    verdict.gap_s = processing_gap(snapshot.variants)
    return verdict


def _check_orders(
    verdict: Verdict, snapshot: _Snapshot, accepted: dict[uuid.UUID, Accepted]
) -> None:
    numbers: dict[uuid.UUID, list[int]] = defaultdict(list)
    for variant in snapshot.variants:
        numbers[variant["order_id"]].append(variant["variant_number"])
        if variant["status"] not in _FINAL:
            verdict.flag("stuck", f"variant {variant['id']} is {variant['status']}")
    for order_id, order in accepted.items():
        if order_id not in snapshot.orders:
            verdict.flag("lost", f"accepted order {order_id} does not exist")
        elif sorted(numbers[order_id]) != list(range(1, order.variant_count + 1)):
            verdict.flag(
                "lost",
                f"order {order_id} has variants {sorted(numbers[order_id])}, "
                f"accepted with {order.variant_count}",
            )
    if snapshot.unsent:
        verdict.flag("stuck", f"{snapshot.unsent} event(s) never left the outbox")


def _files(root: Any) -> list[str]:
    if not root.exists():
        return []
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def _check_files(verdict: Verdict, snapshot: _Snapshot, stack: Stack) -> None:
    files = _files(stack.storage_root)
    by_variant: dict[tuple[str, str, int], list[str]] = defaultdict(list)
    pattern = re.compile(r"^([^/]+)/([^/]+)/variant-([1-5])\.[a-z0-9]{1,8}$")
    for path in files:
        match = pattern.match(path)
        if match:
            by_variant[(match[1], match[2], int(match[3]))].append(path)
    expected: set[str] = set()
    for variant in snapshot.variants:
        order = snapshot.orders[variant["order_id"]]
        key = (str(order["user_id"]), str(order["id"]), variant["variant_number"])
        found = by_variant.get(key, [])
        if len(found) > 1:
            verdict.flag("duplicated", f"variant {variant['id']} has files {found}")
        if variant["status"] == "failed":
            # An attempt that stored its audio and was lost before it could commit, on a
            # variant that then failed: its own file at its own path, which nobody can reach
            # (audio is served for complete variants only). Counted, not a failure.
            expected.update(found)
            verdict.stale_files += len(found)
        if variant["status"] != "complete":
            continue
        path = variant["storage_path"]
        layout = f"{key[0]}/{key[1]}/variant-{key[2]}."
        if not path or not path.startswith(layout):
            verdict.flag("inconsistent", f"variant {variant['id']} is stored at {path!r}")
        elif path not in files:
            verdict.flag("lost", f"variant {variant['id']} is complete without its file {path}")
        expected.add(path)
    for path in files:
        if path not in expected:
            verdict.flag("leaked", f"file {path} belongs to no complete variant")


def _by(messages: Iterable[StreamMessage], subject: str, key: str) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for message in messages:
        if message.subject == subject and isinstance(message.payload, dict):
            grouped[str(message.payload.get(key))].append(message.payload)
    return grouped


def _check_events(
    verdict: Verdict, snapshot: _Snapshot, messages: list[StreamMessage], *, max_attempts: int
) -> None:
    _check_ids(verdict, messages)
    created = _by(messages, SUBJECT_ORDER_CREATED, "order_id")
    completed = _by(messages, SUBJECT_ORDER_COMPLETED, "order_id")
    requested = _by(messages, SUBJECT_VARIANT_REQUESTED, "variant_id")
    statuses = _by(messages, SUBJECT_VARIANT_STATUS, "variant_id")
    outcome = _outcomes(snapshot.variants)
    for order_id in snapshot.orders:
        key = str(order_id)
        _exactly_once(verdict, created.get(key, []), f"order {key}: orders.created")
        announced = completed.get(key, [])
        if outcome.get(order_id) in _FINAL:
            _exactly_once(verdict, announced, f"order {key}: orders.completed")
            if announced and announced[-1].get("status") != outcome[order_id]:
                verdict.flag(
                    "inconsistent",
                    f"order {key} announced {announced[-1].get('status')}, is {outcome[order_id]}",
                )
        elif announced:
            verdict.flag("inconsistent", f"order {key} announced complete while unfinished")
    for variant in snapshot.variants:
        key = str(variant["id"])
        if not requested.get(key):
            verdict.flag("lost", f"variant {key} was never requested on the stream")
        if variant["attempts"] > max_attempts:
            verdict.flag("inconsistent", f"variant {key} made {variant['attempts']} attempts")
        trail = [(event.get("status"), event.get("attempts")) for event in statuses.get(key, [])]
        problem = lifecycle_problem(trail)
        if problem:
            verdict.flag(
                "duplicated" if "twice" in problem else "inconsistent",
                f"variant {key}: {problem} in {trail}",
            )
        elif variant["status"] in _FINAL and trail[-1:] != [
            (variant["status"], variant["attempts"])
        ]:
            verdict.flag(
                "lost",
                f"variant {key} is {variant['status']} after {variant['attempts']} attempt(s);"
                f" its status events say {trail}",
            )


def _check_ids(verdict: Verdict, messages: list[StreamMessage]) -> None:
    """No message id twice; what the services publish goes out under its own event id (the
    key JetStream drops duplicates by)."""
    ids = Counter(message.msg_id for message in messages if message.msg_id)
    for msg_id, count in ids.items():
        if count > 1:
            verdict.flag("duplicated", f"event {msg_id} is in the stream {count} times")
    for message in messages:
        payload = message.payload
        if (
            message.subject in _PUBLISHED
            and isinstance(payload, dict)
            and (payload.get("event_id") != message.msg_id)
        ):
            verdict.flag("inconsistent", f"message {message.sequence} is not under its id")


def _outcomes(variants: list[asyncpg.Record]) -> dict[uuid.UUID, str]:
    """Each order's outcome as orders.completed states it; "" while unfinished."""
    by_order: dict[uuid.UUID, list[str]] = defaultdict(list)
    for variant in variants:
        by_order[variant["order_id"]].append(variant["status"])
    return {
        order_id: ""
        if not all(status in _FINAL for status in statuses)
        else "failed"
        if "failed" in statuses
        else "complete"
        for order_id, statuses in by_order.items()
    }


def _exactly_once(verdict: Verdict, found: list[Any], what: str) -> None:
    if not found:
        verdict.flag("lost", f"{what} never published")
    elif len(found) > 1:
        verdict.flag("duplicated", f"{what} published {len(found)} times")


def lifecycle_problem(trail: list[tuple[Any, Any]]) -> str | None:
    """What is wrong with a variant's status events, in stream order; None when they follow
    its lifecycle: an attempt starts (generating, attempts + 1, also when a lost generator's
    attempt is taken over), and ends complete, failed, back to pending with the same count (a
    retry) or with one less (handed back at shutdown); pending may also be failed by the
    dead-letter service; a final variant only moves again when requeued (pending, 0)."""
    previous: tuple[Any, Any] | None = None
    for status, attempts in trail:
        if previous is None:
            allowed = {("generating", 1), ("failed", 0), ("pending", 0)}
        else:
            state, count = previous
            if state == "generating":
                allowed = {
                    ("generating", count + 1),
                    ("complete", count),
                    ("failed", count),
                    ("pending", count),
                    ("pending", count - 1),
                }
            elif state == "pending":
                allowed = {("generating", count + 1), ("failed", count)}
            else:
                allowed = {("pending", 0)}
        if (status, attempts) not in allowed:
            if previous == (status, attempts):
                return f"{status} ({attempts}) announced twice"
            return f"{previous} -> {(status, attempts)} is not a lifecycle step"
        previous = (status, attempts)
    return None


def _check_failures(verdict: Verdict, snapshot: _Snapshot) -> None:
    rows: dict[uuid.UUID, list[asyncpg.Record]] = defaultdict(list)
    for job in snapshot.jobs:
        if job["variant_id"] is not None:
            rows[job["variant_id"]].append(job)
    for variant in snapshot.variants:
        jobs = rows.get(variant["id"], [])
        if variant["status"] == "failed" and not jobs:
            verdict.flag("lost", f"failed variant {variant['id']} has no failed_jobs row")
        if variant["status"] == "complete" and any(job["resolved_at"] is None for job in jobs):
            verdict.flag(
                "inconsistent", f"complete variant {variant['id']} has an open dead letter"
            )


def processing_gap(variants: list[asyncpg.Record]) -> float:
    """The longest pause, seconds, between two variants becoming final one after the other:
    under steady load, how long processing stood still."""
    times = sorted(v["completed_at"].timestamp() for v in variants if v["completed_at"])
    return round(max((b - a for a, b in itertools.pairwise(times)), default=0.0), 2)
