"""Structured JSON logs for every service, one object per line on stdout.

Fields that belong to the unit of work at hand (correlation id, order id, variant id) live in a
context variable: set them once with ``log_context(...)`` where the work starts, and every log
line written inside carries them, whichever module writes it.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import sys
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["JsonFormatter", "configure_logging", "current_context", "log_context"]

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "serenade_log_context", default=None
)
# Attributes every LogRecord has; anything else passed through `extra=` is a field of ours.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def current_context() -> dict[str, Any]:
    return dict(_context.get() or {})


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every log line written inside the block (None values are left out)."""
    merged = current_context() | {key: value for key, value in fields.items() if value is not None}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str, fields: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.service = service
        self.fields = dict(fields or {})
        # The keys every line has, which a field of the work at hand never replaces.
        self._standard = frozenset({"ts", "level", "service", "logger", "message", *self.fields})
        # The second of the last line and its text (one tuple: replaced whole, so a thread
        # formatting meanwhile never pairs one second with another's text).
        self._second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        # Every line of every service passes here (the generator writes one per variant):
        # the record's attributes are read once, the context is not copied, and the time's
        # text is made once a second.
        entry: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            **self.fields,
        }
        standard = self._standard
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
            standard = standard | {"exc"}
        extras = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}
        context = _context.get()
        fields = {**context, **extras} if context else extras
        for key, value in fields.items():
            # A field named like a standard key (a "service" or "level" of the work at hand)
            # is kept beside it, never instead: a line's level and origin are not negotiable.
            entry[f"extra_{key}" if key in standard else key] = value
        return orjson.dumps(entry, default=str).decode()

    def _timestamp(self, created: float) -> str:
        """``created`` in RFC 3339 with milliseconds, UTC: ``2026-12-06T13:04:11.123+00:00``."""
        # As datetime.fromtimestamp: to the microsecond (half to even), then milliseconds cut.
        second = int(created)
        micro = round((created - second) * 1_000_000)
        if micro >= 1_000_000:
            second, micro = second + 1, micro - 1_000_000
        cached, text = self._second
        if cached != second:
            text = dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (second, text)
        return f"{text}.{micro // 1000:03d}+00:00"


def configure_logging(
    service: str, *, level: int = logging.INFO, fields: dict[str, Any] | None = None
) -> None:
    """Route every logger (ours, uvicorn's, FastStream's) to JSON lines on stdout; ``fields``
    are on every line (which of several API processes wrote it)."""
    # A line says neither the caller's file and line nor its thread or process (JsonFormatter
    # writes none of them), so the logging module is told not to find them out for every
    # record: "Optimization" in the logging HOWTO. sys._getframe walks and the rest took half
    # of each line's cost (an access line: 40 -> 19 us), and every request writes one.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service, fields))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "faststream", "litestar"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
