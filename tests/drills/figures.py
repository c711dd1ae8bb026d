"""Each drill's one line of figures, and the table of the latest ones in docs/reliability.md."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

__all__ = ["DRILLS", "figure_line", "record_figures"]

# The drills in the order docs/reliability.md lists them.
DRILLS = (
    "generator-kill",
    "nats-restart",
    "nats-cluster",
    "postgres-crash",
    "pauses",
    "hostile-messages",
    "api-abuse",
    "access",
    "soak",
)
RELIABILITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
_HEADER = ["| drill | figures | date (UTC) | command |", "| --- | --- | --- | --- |"]


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if value % 1 else str(int(value))
    return str(value)


def figure_line(drill: str, figures: dict[str, Any]) -> str:
    """``drill=<name> key=value ...``, in the order given."""
    return " ".join(
        [f"drill={drill}", *(f"{key}={_shown(value)}" for key, value in figures.items())]
    )


def record_figures(
    drill: str,
    line: str,
    *,
    command: str,
    table: str = "figures",
    path: Path = RELIABILITY_DOC,
    now: dt.datetime | None = None,
) -> None:
    """Put ``line`` in the table between the markers ``<!-- {table}:begin -->`` and
    ``<!-- {table}:end -->`` (one row per drill, replaced)."""
    text = path.read_text("utf-8")
    begin = f"<!-- {table}:begin -->"
    start, end = text.index(begin) + len(begin), text.index(f"<!-- {table}:end -->")
    rows = {}
    for row in text[start:end].strip().splitlines():
        match = re.match(r"^\| `([a-z-]+)` \|", row)
        if match:
            rows[match[1]] = row
    when = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M")
    rows[drill] = f"| `{drill}` | `{line}` | {when} | `{command}` |"
    ordered = [rows[name] for name in DRILLS if name in rows] + [
        row for name, row in rows.items() if name not in DRILLS
    ]
    table = "\n".join(["", *_HEADER, *ordered, ""])
    path.write_text(text[:start] + table + text[end:], "utf-8")
