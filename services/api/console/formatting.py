"""How the console's templates show values: times, ages, events as formatted JSON."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from litestar.plugins.jinja import JinjaTemplateEngine

from services.api.payments.checkout import format_amount

__all__ = ["age", "configure_templates", "json_pretty", "when"]


def when(value: dt.datetime | None) -> str:
    """A timestamp in UTC, to the second."""
    if value is None:
        return "-"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def age(value: dt.timedelta | None) -> str:
    """A duration as a person reads it: 42 s, 3 min 5 s, 2 h 10 min."""
    if value is None:
        return "-"
    seconds = max(0, int(value.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def json_pretty(value: Any) -> str:
    """The event as indented JSON (text that was not JSON is shown as it came)."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()


def configure_templates(engine: JinjaTemplateEngine) -> None:
    """The filters the console's templates use (autoescape stays on: Litestar's default)."""
    engine.engine.filters.update(
        {"when": when, "age": age, "json_pretty": json_pretty, "amount": format_amount}
    )
