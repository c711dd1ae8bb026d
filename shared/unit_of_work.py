"""The unit of work (cosmicpython's pattern), the one way to write: a transaction as a caller,
the events it writes to the outbox in that same transaction, and the relay's wake-up once it has
committed, by construction.

    async with unit_of_work(pool, caller, wake=relay.wake) as uow:
        ...  # queries on uow.conn
        await uow.enqueue(event)

Whatever writes events on a unit's connection (``uow.enqueue``, or ``enqueue(conn, ...)`` from a
function handed the connection, such as ``shared.requeue``; ``outbox_written`` after a statement
that wrote outbox rows itself) marks the unit; when it commits, and only then, ``wake`` runs. A
unit nested in another's transaction (a savepoint) passes the mark on to the outer unit, whose
commit is the one that publishes. Forgetting the wake cost nothing but latency (the relay
polls), which is why it is no longer left to each caller. A writer outside any unit (the CLI's
replay, which has no relay) is picked up by the leader's poll.

A unit's events are not inserted when enqueued but by the message that commits its transaction
(``shared.db.insert_at_commit``): the outbox insert was a round trip of its own in every writing
transaction, and the generator's group commits are paced by their round trips. So nothing in a
unit reads its own outbox rows before the commit (none does: the generator's ``write_once``
looks for a dead letter written by an earlier transaction).
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, NamedTuple

import orjson

from shared.db import insert_at_commit, sql_literal, transaction

if TYPE_CHECKING:
    import uuid
    from collections.abc import AsyncIterator, Callable, Iterator, Sequence

    import asyncpg

    from shared.db import Caller
    from shared.events import Event

__all__ = [
    "MAX_EVENT_BYTES",
    "EventTooLargeError",
    "OutboxRows",
    "UnitOfWork",
    "enqueue",
    "outbox_rows",
    "outbox_written",
    "unit_of_work",
    "writing_events",
]

# The largest event the outbox takes, as JSON. NATS refuses a message over its max_payload (1 MB
# unless configured lower): the relay, publishing in order, would stop at such an event for
# ever and hold back every event after it, from every service. Refused here, it fails only the
# transaction that wrote it.
MAX_EVENT_BYTES = 512 * 1024
# A text of at most this many characters is at most MAX_EVENT_BYTES as UTF-8.
_MAX_EVENT_CHARS_UNMEASURED = MAX_EVENT_BYTES // 4
# The head of the insert a unit's events are deferred to (``shared.db.insert_at_commit``).
_OUTBOX_INSERT = "INSERT INTO outbox (event_id, subject, payload, headers) VALUES"


class UnitOfWork:
    """One transaction's connection, and whether it wrote events to the outbox."""

    __slots__ = ("conn", "wrote_events")

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.wrote_events = False

    async def enqueue(self, *events: Event) -> None:
        """Write ``events`` to the outbox in this unit's transaction (see ``enqueue``)."""
        await enqueue(self.conn, *events)


# The open unit of each connection (by identity: a pool's connection proxies are not
# weak-referenceable), so that every outbox write on it is seen, however it is reached.
_units: dict[int, UnitOfWork] = {}


@contextlib.contextmanager
def writing_events(conn: asyncpg.Connection) -> Iterator[UnitOfWork]:
    """Track the outbox writes on ``conn`` while the block runs, inside a transaction the
    caller opened (for a caller with its own transaction handling, such as the API's); the
    unit says afterwards whether any were made. Nested, the outer unit is marked too."""
    key = id(conn)
    outer = _units.get(key)
    unit = _units[key] = UnitOfWork(conn)
    try:
        yield unit
    finally:
        if outer is None:
            del _units[key]
        else:
            _units[key] = outer
            outer.wrote_events = outer.wrote_events or unit.wrote_events


@contextlib.asynccontextmanager
async def unit_of_work(
    db: asyncpg.Pool | asyncpg.Connection,
    caller: Caller,
    *,
    wake: Callable[[], None] | None = None,
) -> AsyncIterator[UnitOfWork]:
    """One transaction as ``caller`` (``shared.db.transaction``); ``wake`` runs once it has
    committed, when it wrote events (never when it rolled back, nor at a nested unit's end)."""
    async with transaction(db, caller) as conn:
        nested = id(conn) in _units
        with writing_events(conn) as unit:
            yield unit
    if unit.wrote_events and wake is not None and not nested:
        wake()


class EventTooLargeError(ValueError):
    """An event larger than ``MAX_EVENT_BYTES``: it could never be published."""


class OutboxRows(NamedTuple):
    """Events as the outbox's columns, one list each, in the events' order."""

    event_ids: list[uuid.UUID]
    subjects: list[str]
    payloads: list[str]
    headers: list[str]


def outbox_rows(events: Sequence[Event]) -> OutboxRows:
    """``events`` as the outbox rows that hold them; EventTooLargeError when one is larger than
    ``MAX_EVENT_BYTES``. For ``enqueue``, and for a statement that writes them itself (the
    API's group of orders, migration 0120), which then calls ``outbox_written``."""
    # Each event serialised once, by pydantic: the text is both what is measured and what is
    # written (PostgreSQL parses it into jsonb). Its UTF-8 is at most 4 bytes a character, so
    # only a text longer than a quarter of the limit is encoded to be measured.
    payloads = [event.__pydantic_serializer__.to_json(event).decode() for event in events]
    for event, payload in zip(events, payloads, strict=True):
        if len(payload) > _MAX_EVENT_CHARS_UNMEASURED:
            size = len(payload.encode())
            if size > MAX_EVENT_BYTES:
                raise EventTooLargeError(
                    f"{event.subject} event {event.event_id} is {size} bytes as JSON;"
                    f" the outbox takes at most {MAX_EVENT_BYTES}"
                )
    return OutboxRows(
        [event.event_id for event in events],
        [event.subject for event in events],
        payloads,
        [orjson.dumps(event.headers()).decode() for event in events],
    )


def outbox_written(conn: asyncpg.Connection) -> None:
    """Mark the unit open on ``conn`` (if any) as having written events: its commit wakes the
    relay. ``enqueue`` does it; a statement that wrote outbox rows itself calls it after."""
    unit = _units.get(id(conn))
    if unit is not None:
        unit.wrote_events = True


@functools.cache
def _subject_literal(subject: str) -> str:
    return sql_literal(subject)


async def enqueue(conn: asyncpg.Connection, *events: Event) -> None:
    """Write ``events`` to the outbox in the caller's transaction. In a unit of work, deferred
    to the message that commits it (written as service_role then, after the events enqueued
    before; dropped with a savepoint rolled back to); elsewhere (the CLI's replay) inserted at
    once, which takes a service_role transaction. EventTooLargeError (and nothing written) when
    one is larger than ``MAX_EVENT_BYTES``: raised here either way, not at the commit."""
    if not events:
        return
    rows = outbox_rows(events)
    if id(conn) in _units:
        # Literals, as the commit message has no parameters (``sql_literal`` quotes them; the
        # JSON texts hold no NUL, which JSON escapes). VALUES rows take their ids in order.
        # A uuid's text (hex digits and dashes) needs no quoting, nor a subject (our constants)
        # more than once.
        values = [
            f"('{event_id}'::uuid, {_subject_literal(subject)},"
            f" {sql_literal(payload)}::jsonb, {sql_literal(headers)}::jsonb)"
            for event_id, subject, payload, headers in zip(*rows, strict=True)
        ]
        if insert_at_commit(conn, _OUTBOX_INSERT, values):
            outbox_written(conn)
            return
    # One statement whatever the count (one round trip); rows keep their order.
    await conn.execute(
        "INSERT INTO outbox (event_id, subject, payload, headers)"
        " SELECT e, s, p::jsonb, h::jsonb"
        " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[])"
        " WITH ORDINALITY AS t (e, s, p, h, n) ORDER BY n",
        *rows,
    )
    outbox_written(conn)
