"""Reading a ``serenade.variants.requested`` message: a ``VariantRequested`` or the reason it is
poison (then dead-lettered at once with its raw text).

A correlation id only tags log lines and events, so one that is not fit to pass on (a NUL, which
PostgreSQL cannot store; a length no request ever has) is made harmless, not refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from shared.events import VariantRequested
from shared.storable import json_or_text, storable_text

__all__ = ["Poison", "clean_correlation_id", "parse_request"]

_MAX_REPORTED_ERRORS = 5
# The API accepts correlation ids of up to 128 characters.
_MAX_CORRELATION_CHARS = 128


@dataclass(frozen=True, slots=True)
class Poison:
    """A message that can never be processed, whatever is retried."""

    error_type: str
    error: str
    original: Any


def parse_request(data: bytes) -> VariantRequested | Poison:
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        return Poison("InvalidJSON", f"the message is not JSON: {error}", json_or_text(data))
    try:
        request = VariantRequested.model_validate(payload)
    except ValidationError as error:
        return Poison(
            "InvalidEvent",
            f"not a valid variants.requested event: {_summary(error)}",
            json_or_text(data),
        )
    cleaned = clean_correlation_id(request.correlation_id)
    if cleaned != request.correlation_id:
        request = request.model_copy(update={"correlation_id": cleaned})
    return request


def clean_correlation_id(value: str | None) -> str | None:
    """``value`` fit to pass on: NULs escaped, at most 128 characters; None when empty."""
    if not value:
        return None
    return storable_text(value)[:_MAX_CORRELATION_CHARS]


def _summary(error: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(part) for part in problem['loc']) or '(the message)'}: {problem['msg']}"
        for problem in error.errors()[:_MAX_REPORTED_ERRORS]
    ]
    more = error.error_count() - len(problems)
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")
