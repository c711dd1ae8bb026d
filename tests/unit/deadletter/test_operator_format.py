"""The operator's table and the consumer's retry delays."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from services.deadletter.consumers import retry_delay
from services.deadletter.operator import format_age, format_table, state_of
from shared.rows import FailedJobRow

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


def _row(**fields: object) -> FailedJobRow:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "subject": "serenade.variants.requested",
        "service": "generator",
        "event_data": {"a": 1},
        "event_text": None,
        "error_type": "ProviderError",
        "error": "boom",
        "attempts": 3,
        "message_id": "m",
        "correlation_id": None,
        "variant_id": None,
        "created_at": NOW - dt.timedelta(minutes=5),
        "replayed_at": None,
        "resolved_at": None,
    }
    values.update(fields)
    return FailedJobRow.model_validate(values)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (7200, "2h"), (86_400 * 3, "3d")],
)
def test_age_is_human(seconds: int, shown: str) -> None:
    assert format_age(NOW - dt.timedelta(seconds=seconds), now=NOW) == shown


def test_age_of_a_clock_skewed_row_is_not_negative() -> None:
    assert format_age(NOW + dt.timedelta(seconds=5), now=NOW) == "0s"


def test_state() -> None:
    assert state_of(_row()) == "open"
    assert state_of(_row(replayed_at=NOW)) == "replayed"
    assert state_of(_row(replayed_at=NOW, resolved_at=NOW)) == "resolved"


def test_table_is_aligned_and_errors_are_one_truncated_line() -> None:
    rows = [
        _row(error="line one\nline two " + "y" * 300),
        _row(subject="serenade.orders.created", resolved_at=NOW),
    ]

    lines = format_table(rows, now=NOW).splitlines()

    assert len(lines) == 3
    column = lines[0].index("ERROR")
    assert all(line[column:].startswith(("ERROR", "ProviderError")) for line in lines)
    assert "line one line two" in lines[1]
    assert lines[1].endswith("…")
    assert len(lines[1][column:]) == 70


def test_retry_delay_doubles_to_a_ceiling() -> None:
    assert [retry_delay(n) for n in (0, 1, 2, 3, 4, 5, 100)] == [0.5, 0.5, 1, 2, 4, 5, 5]
