"""Occasion reminders: ``serenade.occasions.upcoming`` once per order and year.

An order's ``occasion_date`` comes round again every year; when its next occurrence is at most
``days_ahead`` days away, a reminder goes out through the outbox. The occurrence the order was
made for is never reminded (the customer is buying its song already): a birthday ordered ten
days ahead is reminded a year later, not ten days later. The table
``occasion_reminders`` (primary key: order and year of the occurrence) is the guard, so two
processes, a restart or a rerun on the same day can never send one twice.

The calendar lives here, in Python, and only here: for a date in the past the next occurrence
depends on its month and day alone, so each month-day of the window is looked up as one range
scan on ``orders_occasion_month_day_idx`` with its occurrence computed by ``next_occurrence``.

29 February: in a common year it is reminded on 28 February. The day stays in February (the
month the customer chose) and a reminder early is useful where one late is not; 1 March would
move the occasion into another month and be one day too late for a present.
"""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
import logging
import uuid
from typing import TYPE_CHECKING

import asyncpg

from shared.background import BackgroundTasks
from shared.db import DATABASE_ERRORS, Caller
from shared.enums import Occasion
from shared.events import OccasionUpcoming
from shared.payment_rules import UNPAID_ORDER
from shared.unit_of_work import unit_of_work

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ReminderScheduler", "next_occurrence", "send_due_reminders"]

_log = logging.getLogger(__name__)

# Different from the outbox leader's and the migration runner's keys.
_REMINDER_LOCK = 0x5E4E_0CCA


def _anniversary(month: int, day: int, year: int) -> dt.date:
    """``month``/``day`` in ``year``; 29 February is 28 February in a common year."""
    if month == 2 and day == 29 and not calendar.isleap(year):
        day = 28
    return dt.date(year, month, day)


def _next_anniversary(month: int, day: int, today: dt.date) -> dt.date:
    """The first ``month``/``day`` on or after ``today``."""
    this_year = _anniversary(month, day, today.year)
    return this_year if this_year >= today else _anniversary(month, day, today.year + 1)


def next_occurrence(occasion_date: dt.date, today: dt.date) -> dt.date:
    """The occasion's next coming round on or after ``today``: its first anniversary that is
    both on or after ``today`` and after the date itself (the occurrence the order was made
    for, even when still to come, is not one), 29 February falling on 28 February in common
    years."""
    month, day = occasion_date.month, occasion_date.day
    return max(
        _next_anniversary(month, day, today), _anniversary(month, day, occasion_date.year + 1)
    )


def _month_days(today: dt.date, last: dt.date) -> list[tuple[int, int]]:
    """Every month-day whose occasions can fall in ``today..last``, nearest first.

    A common year's 28 February also stands for 29 February (the leap-day orders).
    """
    found: list[tuple[int, int]] = []
    day = today
    # Past a full year every month-day is in already.
    while day <= last and len(found) < 366:
        keys = [(day.month, day.day)]
        if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
            keys.append((2, 29))
        found.extend(key for key in keys if key not in found)
        day += dt.timedelta(days=1)
    return found


# One batch of one month-day: orders with that month-day not yet reminded for the year of their
# next occurrence, in id order after the last one seen; guard rows inserted for them in the same
# statement. $3 is the month-day's next anniversary on or after today: the next occurrence of an
# occasion before it; an occasion on or after it (the order was made ahead of the day) comes
# round first a year after its own date (PostgreSQL's "+ 1 year" turns 29 February into 28
# February of a common year, as ``next_occurrence`` does), and only a window of a year or more
# reaches that. The month-day expression is the one of orders_occasion_month_day_idx, so it is a
# range scan. Reminders go only to orders that were paid (or made with payments off).
_CLAIM_BATCH = f"""
WITH candidate AS (
    SELECT o.id, o.user_id, o.occasion, o.occasion_date,
           CASE WHEN o.occasion_date < $3::date THEN $3::date
                ELSE (o.occasion_date + interval '1 year')::date END AS next_date
    FROM orders o
    WHERE (EXTRACT(MONTH FROM o.occasion_date)::integer * 100
           + EXTRACT(DAY FROM o.occasion_date)::integer) = $1
      AND o.occasion_date IS NOT NULL
      AND o.id > $4
      AND NOT {UNPAID_ORDER}
), due AS (
    SELECT c.* FROM candidate c
    WHERE c.next_date <= $2
      AND NOT EXISTS (
        SELECT 1 FROM occasion_reminders r
        WHERE r.order_id = c.id AND r.occasion_year = EXTRACT(YEAR FROM c.next_date)::integer
    )
    ORDER BY c.id
    LIMIT $5
), guarded AS (
    INSERT INTO occasion_reminders (order_id, occasion_year, next_date)
    SELECT id, EXTRACT(YEAR FROM next_date)::integer, next_date FROM due
    ON CONFLICT (order_id, occasion_year) DO NOTHING
    RETURNING order_id, event_id
)
SELECT d.id, d.user_id, d.occasion, d.occasion_date, d.next_date, g.event_id
FROM due d LEFT JOIN guarded g ON g.order_id = d.id
ORDER BY d.id
"""


async def _claim_batch(
    conn: asyncpg.Connection,
    *,
    month_day: tuple[int, int],
    today: dt.date,
    last: dt.date,
    after: uuid.UUID,
    limit: int,
) -> list[asyncpg.Record]:
    """One batch of due orders of one month-day; ``event_id`` is NULL where another run won."""
    month, day = month_day
    past_next = _next_anniversary(month, day, today)
    rows: list[asyncpg.Record] = await conn.fetch(
        _CLAIM_BATCH, month * 100 + day, last, past_next, after, limit
    )
    return rows


def _event(row: asyncpg.Record, today: dt.date) -> OccasionUpcoming:
    return OccasionUpcoming(
        event_id=row["event_id"],
        order_id=row["id"],
        user_id=row["user_id"],
        occasion=Occasion(row["occasion"]),
        occasion_date=row["occasion_date"],
        next_date=row["next_date"],
        days_until=(row["next_date"] - today).days,
    )


# The smallest uuid: keyset pagination starts before every id.
_FIRST_ID = uuid.UUID(int=0)


async def send_due_reminders(
    conn: asyncpg.Pool | asyncpg.Connection,
    *,
    today: dt.date,
    days_ahead: int,
    batch_size: int = 500,
    exclusive: bool = False,
    wake: Callable[[], None] | None = None,
) -> list[OccasionUpcoming]:
    """Send every reminder due on ``today`` and not sent yet; return the events sent.

    An order is due when its next occurrence is 0..``days_ahead`` days away. Each batch of at
    most ``batch_size`` orders is its own service_role transaction that writes the guard rows
    and the events to the outbox together, so a crash loses nothing and repeats nothing. With
    ``exclusive``, a batch first takes a transaction-scoped advisory lock and the run stops when
    another process holds it (that process is doing the same work). ``wake`` (the outbox
    relay's) runs after each batch that committed reminders.
    """
    if days_ahead < 0:
        raise ValueError("days_ahead must be zero or more")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    last = today + dt.timedelta(days=days_ahead)
    sent: list[OccasionUpcoming] = []
    for month_day in _month_days(today, last):
        after = _FIRST_ID
        while True:
            async with unit_of_work(conn, Caller.service(), wake=wake) as uow:
                tx = uow.conn
                if exclusive and not await tx.fetchval(
                    "SELECT pg_try_advisory_xact_lock($1)", _REMINDER_LOCK
                ):
                    _log.info("occasion reminders: another process is sending them")
                    return sent
                rows = await _claim_batch(
                    tx, month_day=month_day, today=today, last=last, after=after, limit=batch_size
                )
                events = [_event(row, today) for row in rows if row["event_id"] is not None]
                await uow.enqueue(*events)
            sent.extend(events)
            if len(rows) < batch_size:
                break
            after = rows[-1]["id"]
    if sent:
        _log.info("occasion reminders: sent %d for %s", len(sent), today.isoformat())
    return sent


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class ReminderScheduler:
    """Runs ``send_due_reminders`` every ``interval`` seconds until stopped.

    Meant for a service's lifespan: it never raises into its host. A database outage is
    logged and the next round tries again; any other error is logged with its traceback and
    does not stop the rounds either. Several processes may run one: the advisory lock makes the
    others skip a round, and the guard table makes a duplicate impossible anyway. "Today" is
    the UTC date unless ``clock`` says otherwise; ``wake`` is the outbox relay's.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        days_ahead: int,
        interval: float = 3600.0,
        batch_size: int = 500,
        clock: Callable[[], dt.date] = _utc_today,
        wake: Callable[[], None] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._pool = pool
        self._days_ahead = days_ahead
        self._interval = interval
        self._batch_size = batch_size
        self._clock = clock
        self._wake = wake
        self._background = BackgroundTasks()
        self.rounds = 0
        self.failures = 0
        self.sent_total = 0

    @property
    def running(self) -> bool:
        return self._background.running

    async def start(self) -> None:
        if not self._background.started:
            self._background.start(self._run(), name="occasion-reminders")

    async def stop(self) -> None:
        await self._background.stop()

    async def run_once(self) -> list[OccasionUpcoming]:
        """One round now (it raises; the periodic loop is what catches)."""
        sent = await send_due_reminders(
            self._pool,
            today=self._clock(),
            days_ahead=self._days_ahead,
            batch_size=self._batch_size,
            exclusive=True,
            wake=self._wake,
        )
        self.sent_total += len(sent)
        return sent

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except DATABASE_ERRORS as error:
                self.failures += 1
                _log.warning("occasion reminders: database unavailable (%s); will retry", error)
            except Exception:  # noqa: BLE001 - one bad round must not end the task
                self.failures += 1
                _log.exception("occasion reminders: round failed; will retry")
            self.rounds += 1
            await asyncio.sleep(self._interval)
