"""Fixtures of the drills: their settings, a stack per drill, and the figures each reports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.drills.config import DrillSettings, drill_settings
from tests.drills.figures import figure_line, record_figures

if TYPE_CHECKING:
    from collections.abc import Callable

_FIGURES = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session")
def drills() -> DrillSettings:
    return drill_settings()


@pytest.fixture
def report(
    request: pytest.FixtureRequest, drills: DrillSettings
) -> Callable[[str, dict[str, Any]], str]:
    """Print a drill's line of figures (also shown in the run's summary); in full mode, record
    it in docs/reliability.md."""

    def _report(drill: str, figures: dict[str, Any]) -> str:
        line = figure_line(drill, {"mode": drills.mode, **figures})
        print(line)
        request.config.stash.setdefault(_FIGURES, []).append(line)
        if drills.records:
            table = "figures" if drills.full else "short"
            record_figures(drill, line, command=drills.shown_command, table=table)
        return line

    return _report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(_FIGURES, [])
    if lines:
        terminalreporter.section("drill figures")
        for line in lines:
            terminalreporter.write_line(line)
