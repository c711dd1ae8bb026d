"""The drills' own parts, without a stack: the lifecycle check, the figure line and its table."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest

from tests.drills.figures import figure_line, record_figures
from tests.drills.invariants import lifecycle_problem
from tests.drills.load import percentile

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    "trail",
    [
        [("generating", 1), ("complete", 1)],
        [("generating", 1), ("generating", 2), ("complete", 2)],  # a lost generator taken over
        [("generating", 1), ("pending", 1), ("generating", 2), ("failed", 2)],  # a retry
        [("generating", 1), ("pending", 0), ("generating", 1), ("complete", 1)],  # handed back
        [("failed", 0)],  # given up before any attempt
        [("generating", 1), ("failed", 1), ("pending", 0), ("generating", 1), ("complete", 1)],
        [],
    ],
)
def test_a_variant_lifecycle_is_accepted(trail: list[tuple[str, int]]) -> None:
    assert lifecycle_problem(trail) is None


@pytest.mark.parametrize(
    ("trail", "problem"),
    [
        ([("generating", 1), ("complete", 1), ("complete", 1)], "announced twice"),
        ([("generating", 1), ("generating", 1)], "announced twice"),
        ([("complete", 1)], "not a lifecycle step"),
        ([("generating", 1), ("complete", 1), ("generating", 2)], "not a lifecycle step"),
        ([("generating", 2)], "not a lifecycle step"),
        ([("generating", 1), ("complete", 2)], "not a lifecycle step"),
    ],
)
def test_a_doubled_or_impossible_step_is_named(trail: list[tuple[str, int]], problem: str) -> None:
    found = lifecycle_problem(trail)
    assert found is not None
    assert problem in found


def test_the_figure_line_is_one_line_of_key_value_pairs() -> None:
    line = figure_line("generator-kill", {"kills": 5, "lost": 0, "gap_s": 2.5, "p99_ms": 12.0})
    assert line == "drill=generator-kill kills=5 lost=0 gap_s=2.5 p99_ms=12"


def test_recorded_figures_replace_the_drills_row_and_keep_the_order(tmp_path: Path) -> None:
    doc = tmp_path / "reliability.md"
    doc.write_text("# title\n\n<!-- figures:begin -->\n<!-- figures:end -->\n\nafter\n")
    when = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)

    record_figures("soak", "drill=soak lost=1", command="make drills", path=doc, now=when)
    record_figures("generator-kill", "drill=generator-kill lost=0", command="c", path=doc, now=when)
    record_figures("soak", "drill=soak lost=0", command="make drills", path=doc, now=when)

    text = doc.read_text()
    assert text.count("drill=soak") == 1
    assert "drill=soak lost=0" in text
    assert text.index("generator-kill") < text.index("`soak`")
    assert "| 2026-01-02 03:04 | `make drills` |" in text
    assert text.endswith("\nafter\n")


def test_percentiles_of_few_values() -> None:
    assert percentile([], 0.99) == 0.0
    assert percentile([5.0], 0.5) == 5.0
    assert percentile([float(n) for n in range(1, 101)], 0.5) == pytest.approx(50.5, abs=1)
