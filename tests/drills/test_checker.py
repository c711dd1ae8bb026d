"""The drills' own parts, without a stack: the lifecycle check, the figure line and its table."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest

from services.deadletter.consumers import ENVELOPE_DURABLE
from services.generator.consumer import DURABLE as GENERATOR_DURABLE
from shared.events import STREAM_NAME
from tests.drills.figures import figure_line, record_figures
from tests.drills.invariants import lifecycle_problem, settle
from tests.drills.load import percentile

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests.drills.stack import Stack


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


# --- settling -----------------------------------------------------------------------------------
# The way of one dead letter: the generator commits it to the outbox, then acks its message; the
# relay publishes it, then marks the row sent; the dead-letter service stores it.
_STEPS = ("committed", "acked", "published", "marked", "stored")


class _OneDeadLetter:
    """A stack that is quiet but for one dead letter, which takes its next step just before the
    reads listed in ``schedule`` (one read index per step)."""

    def __init__(self, schedule: tuple[int, ...]) -> None:
        self.schedule = schedule
        self.reads = 0
        self.step = 0  # how many of _STEPS are done
        self.js = SimpleNamespace(consumer_info=self._consumer_info, stream_info=self._stream_info)

    def _read(self) -> None:
        while self.step < len(self.schedule) and self.schedule[self.step] <= self.reads:
            self.step += 1
        self.reads += 1

    def done(self, name: str) -> bool:
        return self.step > _STEPS.index(name)

    async def _consumer_info(self, stream: str, consumer: str) -> Any:
        self._read()
        held = {
            GENERATOR_DURABLE: not self.done("acked"),
            ENVELOPE_DURABLE: self.done("published") and not self.done("stored"),
        }.get(consumer, False)
        assert stream
        return SimpleNamespace(num_pending=0, num_ack_pending=int(held))

    async def _stream_info(self, name: str) -> Any:
        self._read()
        last_seq = 100 + (name == STREAM_NAME and self.done("published"))
        return SimpleNamespace(state=SimpleNamespace(last_seq=last_seq))

    async def _fetchrow(self, query: str) -> dict[str, int]:
        self._read()
        assert "outbox" in query
        return {
            "unfinished": 0,
            "unsent": int(self.done("committed") and not self.done("marked")),
            "last_outbox_id": 7 + self.done("committed"),
        }

    @contextlib.asynccontextmanager
    async def admin(self) -> AsyncIterator[Any]:
        yield SimpleNamespace(fetchrow=self._fetchrow)


@pytest.mark.parametrize("first", range(8))
async def test_settling_never_misses_a_dead_letter_handed_on_between_two_reads(first: int) -> None:
    """However the steps fall between the reads of a look (a drill once counted the rows while
    seven dead letters were on their way), the stack is settled only once the row is stored."""
    gaps = itertools.product(range(7), repeat=len(_STEPS) - 1)
    for gap in gaps:
        schedule = tuple(itertools.accumulate(gap, initial=first))
        stack = _OneDeadLetter(schedule)
        settled, _, last = await settle(cast("Stack", stack), timeout=5, interval=0)
        assert settled, (schedule, last)
        assert stack.done("stored"), f"settled at read {stack.reads} with {schedule}"
