"""``next_occurrence``: the calendar of occasion reminders, 29 February and year ends included;
never the occurrence an order was made for."""

from __future__ import annotations

import calendar
import datetime as dt

import pytest

from services.deadletter.reminders import next_occurrence

D = dt.date


def _in_year(occasion: dt.date, year: int) -> dt.date:
    """The occasion's month and day in ``year``, 29 February on 28 February in common years."""
    if (occasion.month, occasion.day) == (2, 29) and not calendar.isleap(year):
        return D(year, 2, 28)
    return occasion.replace(year=year)


@pytest.mark.parametrize(
    ("occasion_date", "today", "expected"),
    [
        pytest.param(D(2020, 6, 10), D(2025, 6, 10), D(2025, 6, 10), id="same-day-is-today"),
        pytest.param(D(2025, 6, 10), D(2025, 6, 10), D(2026, 6, 10), id="the-date-itself-today"),
        pytest.param(D(2020, 6, 9), D(2025, 6, 10), D(2026, 6, 9), id="yesterday-is-next-year"),
        pytest.param(D(2020, 6, 11), D(2025, 6, 10), D(2025, 6, 11), id="tomorrow-this-year"),
        pytest.param(D(2019, 12, 31), D(2025, 12, 20), D(2025, 12, 31), id="dec-31-from-dec-20"),
        pytest.param(D(2019, 12, 31), D(2026, 1, 5), D(2026, 12, 31), id="dec-31-from-jan-5"),
        pytest.param(D(2019, 1, 5), D(2025, 12, 20), D(2026, 1, 5), id="jan-5-wraps-the-year"),
        pytest.param(D(2019, 1, 1), D(2025, 12, 31), D(2026, 1, 1), id="jan-1-from-dec-31"),
        pytest.param(D(2024, 2, 29), D(2027, 2, 1), D(2027, 2, 28), id="leap-day-in-common-year"),
        pytest.param(D(2024, 2, 29), D(2027, 2, 28), D(2027, 2, 28), id="leap-day-on-feb-28"),
        pytest.param(D(2024, 2, 29), D(2027, 3, 1), D(2028, 2, 29), id="leap-day-after-feb-28"),
        pytest.param(D(2024, 2, 29), D(2028, 1, 15), D(2028, 2, 29), id="leap-day-in-leap-year"),
        pytest.param(D(2024, 2, 29), D(2028, 2, 29), D(2028, 2, 29), id="leap-day-on-the-day"),
        pytest.param(D(2024, 2, 29), D(2099, 3, 1), D(2100, 2, 28), id="2100-is-not-leap"),
        pytest.param(D(1996, 2, 29), D(2000, 2, 1), D(2000, 2, 29), id="2000-is-leap"),
        pytest.param(D(2023, 2, 28), D(2028, 2, 1), D(2028, 2, 28), id="feb-28-stays-feb-28"),
        pytest.param(D(2023, 3, 1), D(2027, 2, 28), D(2027, 3, 1), id="mar-1-stays-mar-1"),
        pytest.param(D(2025, 6, 20), D(2025, 6, 10), D(2026, 6, 20), id="ordered-ten-days-ahead"),
        pytest.param(D(2025, 7, 10), D(2025, 6, 10), D(2026, 7, 10), id="future-date-a-year-on"),
        pytest.param(D(2027, 6, 5), D(2025, 6, 10), D(2028, 6, 5), id="future-years-ahead"),
        pytest.param(D(2028, 2, 29), D(2027, 3, 1), D(2029, 2, 28), id="future-leap-day"),
        pytest.param(D(2024, 6, 10), D(2025, 6, 10), D(2025, 6, 10), id="first-anniversary"),
    ],
)
def test_next_occurrence(occasion_date: dt.date, today: dt.date, expected: dt.date) -> None:
    assert next_occurrence(occasion_date, today) == expected


def test_an_occasion_today_is_zero_days_away() -> None:
    today = D(2025, 6, 10)
    assert (next_occurrence(D(1990, 6, 10), today) - today).days == 0


def test_a_leap_day_falls_on_28_february_exactly_in_common_years() -> None:
    for year in range(1999, 2102):
        today = D(year, 1, 1)
        expected_day = 29 if calendar.isleap(year) else 28
        assert next_occurrence(D(1996, 2, 29), today) == D(year, 2, expected_day)


def test_every_past_date_comes_round_within_a_year_on_its_own_month_and_day() -> None:
    """Every day of a leap year as the occasion, against every day of two years as today."""
    occasions = [D(2024, 1, 1) + dt.timedelta(days=n) for n in range(366)]
    todays = [D(2026, 1, 1) + dt.timedelta(days=n) for n in range(365 + 366)]
    for today in todays:
        for occasion in occasions:
            found = next_occurrence(occasion, today)
            assert found == _in_year(occasion, found.year), (occasion, today)
            assert found >= today, (occasion, today)
            # It is the first: the same occasion a year earlier is already past.
            assert _in_year(occasion, found.year - 1) < today, (occasion, today)


def test_the_occurrence_an_order_was_made_for_is_never_the_next() -> None:
    """Every day of two years as the occasion, against every day of one year as today."""
    occasions = [D(2025, 1, 1) + dt.timedelta(days=n) for n in range(365 + 366)]
    todays = [D(2025, 1, 1) + dt.timedelta(days=n) for n in range(365)]
    for today in todays:
        for occasion in occasions:
            found = next_occurrence(occasion, today)
            assert found > occasion, (occasion, today)
            assert found >= today, (occasion, today)
            assert found == _in_year(occasion, found.year), (occasion, today)
