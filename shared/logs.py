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

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            **self.fields,
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        fields = current_context()
        fields.update({k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES})
        standard = entry.keys() & fields.keys()
        for key, value in fields.items():
            # A field named like a standard key (a "service" or "level" of the work at hand)
            # is kept beside it, never instead: a line's level and origin are not negotiable.
            entry[f"extra_{key}" if key in standard else key] = value
        return orjson.dumps(entry, default=str).decode()


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
