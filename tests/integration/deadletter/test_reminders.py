"""Occasion reminders against real PostgreSQL: once per order and year, leap day included.

Each test has a database of its own, so counts of outbox and guard rows are exact.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from services.deadletter.reminders import ReminderScheduler, next_occurrence, send_due_reminders
from services.launcher import EmbeddedPostgres, migrate
from shared.db import Caller, connect, create_pool, transaction
from shared.events import SUBJECT_OCCASION_UPCOMING, OccasionUpcoming
from tests.helpers import wait_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
    from pathlib import Path

    from tests.conftest import DatabaseFactory

D = dt.date

CONTRACT_FIELDS = {
    "event_id",
    "type",
    "occurred_at",
    "correlation_id",
    "order_id",
    "user_id",
    "occasion",
    "occasion_date",
    "next_date",
    "days_until",
}


@pytest.fixture
async def own_dsn(make_database: DatabaseFactory) -> str:
    return await make_database()


@pytest.fixture
async def own_pool(own_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(own_dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


async def _add_orders(
    pool: asyncpg.Pool, *dates: dt.date | None, occasion: str = "birthday"
) -> list[uuid.UUID]:
    """One order per date (each with an owner of its own); their ids, in the same order."""
    ids = [uuid.uuid4() for _ in dates]
    async with transaction(pool, Caller.service()) as conn:
        await conn.executemany(
            "INSERT INTO orders (id, user_id, recipient_name, occasion, occasion_date, genre)"
            " VALUES ($1, $2, 'Ada', $3, $4, 'pop')",
            [
                (order_id, uuid.uuid4(), occasion, date)
                for order_id, date in zip(ids, dates, strict=True)
            ],
        )
    return ids


async def _outbox(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with transaction(pool, Caller.service()) as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT subject, payload, headers FROM outbox WHERE subject = $1 ORDER BY id",
            SUBJECT_OCCASION_UPCOMING,
        )
    return rows


async def _outbox_count(pool: asyncpg.Pool) -> int:
    return len(await _outbox(pool))


async def _guards(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with transaction(pool, Caller.service()) as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT order_id, occasion_year, next_date, event_id, xmin::text AS tx"
            " FROM occasion_reminders ORDER BY order_id, occasion_year"
        )
    return rows


def _by_order(events: Sequence[OccasionUpcoming]) -> dict[uuid.UUID, tuple[dt.date, int]]:
    found = {event.order_id: (event.next_date, event.days_until) for event in events}
    assert len(found) == len(events), "an order was reminded twice"
    return found


async def test_due_orders_get_exactly_one_reminder_each_with_the_contract_fields(
    own_pool: asyncpg.Pool,
) -> None:
    today = D(2025, 6, 10)
    due = await _add_orders(
        own_pool,
        D(2019, 6, 10),  # today: 0 days
        D(2020, 6, 20),  # 10 days
        D(2024, 7, 10),  # 30 days: the last day of the window
        D(2024, 6, 30),  # last year's order: this year's occurrence, 20 days
    )
    not_due = await _add_orders(
        own_pool,
        D(2025, 6, 30),  # ordered ahead of the day: the order's own occurrence is not reminded
        D(2025, 6, 10),  # ordered for today: its own occurrence, neither
        D(2024, 7, 11),  # 31 days
        D(2024, 6, 9),  # yesterday: next year
        D(2026, 6, 20),  # ahead by more than a year, though its month-day is in the window
        D(2025, 6, 9),  # this year's date, just past
        None,  # no date, no reminder
    )

    sent = await send_due_reminders(own_pool, today=today, days_ahead=30)

    assert _by_order(sent) == {
        due[0]: (D(2025, 6, 10), 0),
        due[1]: (D(2025, 6, 20), 10),
        due[2]: (D(2025, 7, 10), 30),
        due[3]: (D(2025, 6, 30), 20),
    }
    assert not {event.order_id for event in sent} & set(not_due)

    async with transaction(own_pool, Caller.service()) as conn:
        orders = {
            row["id"]: row
            for row in await conn.fetch("SELECT id, user_id, occasion, occasion_date FROM orders")
        }
    rows = await _outbox(own_pool)
    assert len(rows) == 4
    for row in rows:
        payload: dict[str, Any] = row["payload"]
        assert row["subject"] == SUBJECT_OCCASION_UPCOMING == "serenade.occasions.upcoming"
        assert set(payload) == CONTRACT_FIELDS
        assert payload["type"] == "occasions.upcoming"
        assert payload["correlation_id"] is None
        assert row["headers"]["Nats-Msg-Id"] == payload["event_id"]
        dt.datetime.fromisoformat(payload["occurred_at"])
        order = orders[uuid.UUID(payload["order_id"])]
        assert payload["user_id"] == str(order["user_id"])
        assert payload["occasion"] == order["occasion"] == "birthday"
        assert payload["occasion_date"] == order["occasion_date"].isoformat()
        expected_next = next_occurrence(order["occasion_date"], today)
        assert payload["next_date"] == expected_next.isoformat()
        assert payload["days_until"] == (expected_next - today).days
        assert OccasionUpcoming.model_validate(payload) in sent

    # The guard rows name the year of the occurrence and the event that announced it.
    guards = await _guards(own_pool)
    assert {(g["order_id"], g["occasion_year"], g["next_date"]) for g in guards} == {
        (event.order_id, event.next_date.year, event.next_date) for event in sent
    }
    assert {g["event_id"] for g in guards} == {event.event_id for event in sent}


async def test_running_again_the_same_day_or_the_next_day_sends_nothing_more(
    own_pool: asyncpg.Pool,
) -> None:
    await _add_orders(own_pool, D(2020, 6, 20), D(2021, 6, 25), D(2024, 7, 1))
    first = await send_due_reminders(own_pool, today=D(2025, 6, 10), days_ahead=30)
    assert len(first) == 3

    assert await send_due_reminders(own_pool, today=D(2025, 6, 10), days_ahead=30) == []
    assert await send_due_reminders(own_pool, today=D(2025, 6, 11), days_ahead=30) == []
    # A later run with a longer window finds the same occurrences: still nothing.
    assert await send_due_reminders(own_pool, today=D(2025, 6, 20), days_ahead=60) == []
    assert await _outbox_count(own_pool) == 3
    assert len(await _guards(own_pool)) == 3


async def test_a_birthday_ordered_ten_days_ahead_is_reminded_a_year_later_not_now(
    own_pool: asyncpg.Pool,
) -> None:
    [order] = await _add_orders(own_pool, D(2025, 6, 20))
    # Ordered on 10 June for the birthday on the 20th: that birthday is what the song is for.
    for today in (D(2025, 6, 10), D(2025, 6, 19), D(2025, 6, 20)):
        assert await send_due_reminders(own_pool, today=today, days_ahead=30) == []
    assert await _outbox_count(own_pool) == 0

    # The birthday coming round again is reminded.
    sent = await send_due_reminders(own_pool, today=D(2026, 6, 10), days_ahead=30)
    assert _by_order(sent) == {order: (D(2026, 6, 20), 10)}


async def test_the_next_years_occurrence_is_reminded_again(own_pool: asyncpg.Pool) -> None:
    [order] = await _add_orders(own_pool, D(2020, 6, 20))
    first = await send_due_reminders(own_pool, today=D(2025, 6, 10), days_ahead=30)
    assert _by_order(first) == {order: (D(2025, 6, 20), 10)}

    second = await send_due_reminders(own_pool, today=D(2026, 6, 10), days_ahead=30)
    assert _by_order(second) == {order: (D(2026, 6, 20), 10)}
    assert await send_due_reminders(own_pool, today=D(2026, 6, 19), days_ahead=30) == []

    assert [(g["occasion_year"], g["next_date"]) for g in await _guards(own_pool)] == [
        (2025, D(2025, 6, 20)),
        (2026, D(2026, 6, 20)),
    ]
    assert await _outbox_count(own_pool) == 2


async def test_a_leap_day_order_is_reminded_on_28_february_of_a_common_year_exactly_once(
    own_pool: asyncpg.Pool,
) -> None:
    leap_day, feb_28 = await _add_orders(own_pool, D(2024, 2, 29), D(2023, 2, 28))

    common = await send_due_reminders(own_pool, today=D(2027, 2, 1), days_ahead=30)
    assert _by_order(common) == {leap_day: (D(2027, 2, 28), 27), feb_28: (D(2027, 2, 28), 27)}
    # On the day itself, and after it, nothing more in 2027 (its next is 29 February 2028).
    assert await send_due_reminders(own_pool, today=D(2027, 2, 28), days_ahead=30) == []
    assert await send_due_reminders(own_pool, today=D(2027, 3, 1), days_ahead=30) == []

    leap = await send_due_reminders(own_pool, today=D(2028, 2, 1), days_ahead=30)
    assert _by_order(leap) == {leap_day: (D(2028, 2, 29), 28), feb_28: (D(2028, 2, 28), 27)}
    assert await send_due_reminders(own_pool, today=D(2028, 2, 29), days_ahead=30) == []
    assert await _outbox_count(own_pool) == 4


async def test_a_leap_day_order_is_due_on_28_february_with_a_window_of_zero_days(
    own_pool: asyncpg.Pool,
) -> None:
    [leap_day] = await _add_orders(own_pool, D(2024, 2, 29))
    assert await send_due_reminders(own_pool, today=D(2027, 2, 27), days_ahead=0) == []
    sent = await send_due_reminders(own_pool, today=D(2027, 2, 28), days_ahead=0)
    assert _by_order(sent) == {leap_day: (D(2027, 2, 28), 0)}
    # In a leap year 28 February is not its day.
    assert await send_due_reminders(own_pool, today=D(2028, 2, 28), days_ahead=0) == []


async def test_the_window_wraps_from_december_into_january(own_pool: asyncpg.Pool) -> None:
    jan_5, dec_31 = await _add_orders(own_pool, D(2019, 1, 5), D(2019, 12, 31))

    december = await send_due_reminders(own_pool, today=D(2025, 12, 20), days_ahead=30)
    assert _by_order(december) == {jan_5: (D(2026, 1, 5), 16), dec_31: (D(2025, 12, 31), 11)}
    # In January the 5th is the same occurrence (year 2026), and the 31st is a year away.
    assert await send_due_reminders(own_pool, today=D(2026, 1, 2), days_ahead=30) == []

    next_december = await send_due_reminders(own_pool, today=D(2026, 12, 20), days_ahead=30)
    assert _by_order(next_december) == {
        jan_5: (D(2027, 1, 5), 16),
        dec_31: (D(2026, 12, 31), 11),
    }
    assert sorted((g["occasion_year"]) for g in await _guards(own_pool)) == [
        2025,
        2026,
        2026,
        2027,
    ]


@pytest.mark.parametrize(
    ("today", "days_ahead"),
    [
        (D(2027, 2, 10), 30),  # 28 February of a common year in the window
        (D(2028, 2, 15), 30),  # a leap year's February
        (D(2028, 2, 29), 30),
        (D(2027, 3, 1), 30),  # just after a common year's February
        (D(2027, 12, 15), 30),  # December into January
        (D(2026, 12, 31), 1),
        (D(2027, 6, 1), 0),
        (D(2027, 1, 1), 366),  # every month-day
    ],
)
async def test_the_selection_agrees_with_next_occurrence_for_every_day_of_the_year(
    own_pool: asyncpg.Pool, today: dt.date, days_ahead: int
) -> None:
    """Every day of a leap year in the past, and every day from 2027 into 2028 still to come."""
    past = [D(2024, 1, 1) + dt.timedelta(days=n) for n in range(366)]
    ahead = [D(2027, 1, 1) + dt.timedelta(days=n) for n in range(0, 500, 3)]
    dates = past + ahead
    ids = await _add_orders(own_pool, *dates)
    await _add_orders(own_pool, None)

    sent = await send_due_reminders(own_pool, today=today, days_ahead=days_ahead, batch_size=7)

    expected = {}
    for order_id, date in zip(ids, dates, strict=True):
        found = next_occurrence(date, today)
        if (found - today).days <= days_ahead:
            expected[order_id] = (found, (found - today).days)
    assert expected, "the case should remind someone"
    assert _by_order(sent) == expected
    assert await _outbox_count(own_pool) == len(expected)


async def test_a_backlog_is_sent_in_bounded_batches_each_its_own_transaction(
    own_pool: asyncpg.Pool,
) -> None:
    await _add_orders(own_pool, *[D(2020, 6, 20)] * 10)
    sent = await send_due_reminders(own_pool, today=D(2025, 6, 10), days_ahead=30, batch_size=3)
    assert len(sent) == 10
    guards = await _guards(own_pool)
    assert len(guards) == 10
    # 3 + 3 + 3 + 1: four transactions wrote them.
    assert len({g["tx"] for g in guards}) == 4


@pytest.mark.parametrize("exclusive", [False, True], ids=["guard-only", "advisory-lock"])
async def test_two_concurrent_runs_send_each_reminder_once(
    own_dsn: str, own_pool: asyncpg.Pool, exclusive: bool
) -> None:
    dates = [D(2020, 6, 11) + dt.timedelta(days=n % 12) for n in range(120)]
    ids = await _add_orders(own_pool, *dates)
    first, second = await connect(own_dsn), await connect(own_dsn)
    try:
        results = await asyncio.gather(
            *(
                send_due_reminders(
                    conn, today=D(2025, 6, 10), days_ahead=30, batch_size=4, exclusive=exclusive
                )
                for conn in (first, second)
            )
        )
    finally:
        await first.close()
        await second.close()
    sent = [event for events in results for event in events]
    assert set(_by_order(sent)) == set(ids)
    assert await _outbox_count(own_pool) == 120
    assert len(await _guards(own_pool)) == 120


async def test_the_month_day_lookup_is_a_range_scan_on_its_index(own_pool: asyncpg.Pool) -> None:
    from services.deadletter.reminders import _CLAIM_BATCH  # noqa: PLC0415 - the query under test

    async with transaction(own_pool, Caller.service()) as conn:
        # Tiny tables favour a sequential scan; forbid it to learn whether the index can serve.
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = await conn.fetch(
            f"EXPLAIN {_CLAIM_BATCH}",
            620,
            D(2025, 7, 10),
            D(2025, 6, 20),
            uuid.UUID(int=0),
            500,
        )
    text = "\n".join(row[0] for row in plan)
    assert "orders_occasion_month_day_idx" in text, text


async def test_deleting_an_order_takes_its_reminders_with_it(own_pool: asyncpg.Pool) -> None:
    [order] = await _add_orders(own_pool, D(2020, 6, 20))
    await send_due_reminders(own_pool, today=D(2025, 6, 10), days_ahead=30)
    async with transaction(own_pool, Caller.service()) as conn:
        await conn.execute("DELETE FROM orders WHERE id = $1", order)
    assert await _guards(own_pool) == []


@pytest.mark.parametrize(
    "caller", [Caller.anon(), Caller.user(uuid.uuid4())], ids=["anon", "authenticated"]
)
async def test_only_service_role_may_touch_the_reminder_guards(
    own_pool: asyncpg.Pool, caller: Caller
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with transaction(own_pool, caller) as conn:
            await conn.fetch("SELECT * FROM occasion_reminders")


# --- the scheduler ------------------------------------------------------------------------


async def test_the_scheduler_sends_reminders_every_interval(own_pool: asyncpg.Pool) -> None:
    scheduler = ReminderScheduler(
        own_pool, days_ahead=30, interval=0.05, clock=lambda: D(2025, 6, 10)
    )
    await _add_orders(own_pool, D(2020, 6, 20))
    await scheduler.start()
    try:
        await wait_for(lambda: _outbox_at_least(own_pool, 1), what="the first reminder")
        # An order made later is found by a later round; the first is not sent again.
        await _add_orders(own_pool, D(2020, 6, 21))
        await wait_for(lambda: _outbox_at_least(own_pool, 2), what="the second reminder")
        rounds = scheduler.rounds
        await wait_for(_async(lambda: scheduler.rounds >= rounds + 2), what="two more rounds")
        assert await _outbox_count(own_pool) == 2
        assert scheduler.sent_total == 2
        assert scheduler.failures == 0
    finally:
        await scheduler.stop()
    assert not scheduler.running


async def test_the_scheduler_survives_a_closed_pool(
    own_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    pool = await create_pool(own_dsn, min_size=1, max_size=2)
    await pool.close()
    scheduler = ReminderScheduler(pool, days_ahead=30, interval=0.02)
    with caplog.at_level(logging.WARNING, logger="services.deadletter.reminders"):
        await scheduler.start()
        try:
            await wait_for(_async(lambda: scheduler.failures >= 3), what="failed rounds")
            assert scheduler.running
        finally:
            await scheduler.stop()
    assert "database unavailable" in caplog.text


async def test_the_scheduler_survives_a_stopped_server_and_carries_on_when_it_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = EmbeddedPostgres(tmp_path / "postgres", durable=False)
    dsn = await asyncio.to_thread(server.start)
    try:
        await migrate(dsn)
        pool = await create_pool(dsn, min_size=1, max_size=2, command_timeout=5)
        scheduler = ReminderScheduler(
            pool, days_ahead=30, interval=0.05, clock=lambda: D(2025, 6, 10)
        )
        try:
            await _add_orders(pool, D(2020, 6, 20))
            with caplog.at_level(logging.WARNING, logger="services.deadletter.reminders"):
                await scheduler.start()
                await wait_for(_async(lambda: scheduler.sent_total == 1), what="a reminder")

                await asyncio.to_thread(server.stop)
                await wait_for(_async(lambda: scheduler.failures >= 2), what="failed rounds")
                assert scheduler.running

                # The server may come back on another port (its old one can linger in
                # TIME_WAIT): point the pool at wherever it is now, as a DNS change would.
                pool.set_connect_args(await asyncio.to_thread(server.start))
                await _add_orders(pool, D(2020, 6, 21))
                await wait_for(
                    _async(lambda: scheduler.sent_total == 2),
                    timeout=30,
                    what="a reminder after the restart",
                )
            assert await _outbox_count(pool) == 2
            assert "database unavailable" in caplog.text
        finally:
            await scheduler.stop()
            pool.terminate()
    finally:
        await asyncio.to_thread(server.stop)


async def _outbox_at_least(pool: asyncpg.Pool, count: int) -> bool:
    return await _outbox_count(pool) >= count


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    """``wait_for`` awaits its condition: wrap a plain check."""

    async def condition() -> bool:
        return check()

    return condition


async def test_only_orders_that_were_paid_are_reminded(own_pool: asyncpg.Pool) -> None:
    # With payments on, an order whose own payment never was paid (awaiting, cancelled,
    # expired) gets no reminder; a paid one does, and so does one made with payments off.
    today = D(2025, 6, 10)
    free, paid, awaiting, cancelled = await _add_orders(
        own_pool, D(2020, 6, 12), D(2020, 6, 13), D(2020, 6, 14), D(2020, 6, 15)
    )
    async with transaction(own_pool, Caller.service()) as conn:
        for order_id, status, paid_at, lapse in (
            (paid, "paid", dt.datetime.now(dt.UTC), None),
            (awaiting, "awaiting", None, None),
            (cancelled, "cancelled", None, "cancelled"),
        ):
            await conn.execute(
                "INSERT INTO payments (order_id, kind, status, amount, currency, provider,"
                " expires_at, paid_at, lapse_reason)"
                " VALUES ($1, 'order', $2, 2900, 'eur', 'local', now(), $3, $4)",
                order_id,
                status,
                paid_at,
                lapse,
            )

    sent = await send_due_reminders(own_pool, today=today, days_ahead=30)

    assert {event.order_id for event in sent} == {free, paid}
