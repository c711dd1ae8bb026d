"""Reading a ``serenade.variants.requested`` message: a ``VariantRequested`` or the reason it is
poison (then dead-lettered at once with its raw text)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from shared.events import VariantRequested

from .deadletters import original_event

__all__ = ["Poison", "parse_request"]

_MAX_REPORTED_ERRORS = 5


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
        return Poison("InvalidJSON", f"the message is not JSON: {error}", original_event(data))
    try:
        return VariantRequested.model_validate(payload)
    except ValidationError as error:
        return Poison(
            "InvalidEvent", f"not a valid variants.requested event: {_summary(error)}", payload
        )


def _summary(error: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(part) for part in problem['loc']) or '(the message)'}: {problem['msg']}"
        for problem in error.errors()[:_MAX_REPORTED_ERRORS]
    ]
    more = error.error_count() - len(problems)
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")
