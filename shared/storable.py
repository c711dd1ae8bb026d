"""Text and JSON as PostgreSQL can hold them: the one rule for every text and jsonb column that
keeps what a message brought (dead letters, their envelopes, correlation ids).

text and jsonb refuse NUL; jsonb (through the orjson codec) refuses lone surrogates and integers
beyond 64 bits, and orjson would read such an integer as a float, changing it. NUL characters are
written as the six characters ``\\u0000``, lone surrogates as ``\\udXXX``; a document that jsonb
cannot hold exactly is kept as text instead, verbatim.
"""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = ["NOT_JSON", "decode_original", "json_or_text", "parse_json", "storable_text", "text_of"]

_INT64_MIN: Final = -(2**63)
_UINT64_MAX: Final = 2**64 - 1
_NUL: Final = "\x00"
_NUL_ESCAPED: Final = "\\u0000"


class _NotRepresentableError(ValueError):
    """A JSON document that jsonb (through the orjson codec) cannot hold exactly."""


def _reject_constant(name: str) -> Any:
    raise _NotRepresentableError(f"{name} is not JSON")


def _bounded_int(text: str) -> int:
    value = int(text)
    if not _INT64_MIN <= value <= _UINT64_MAX:
        raise _NotRepresentableError("integer beyond 64 bits")
    return value


def _escape_nul(text: str) -> str:
    return text.replace(_NUL, _NUL_ESCAPED) if _NUL in text else text


def storable_text(text: str) -> str:
    """``text`` as a text column holds it: NULs written as ``\\u0000``, lone surrogates (which
    are not UTF-8) as ``\\udXXX``."""
    try:
        text.encode()
    except UnicodeEncodeError:
        text = text.encode("utf-8", errors="backslashreplace").decode()
    return _escape_nul(text)


def _storable(value: Any) -> Any:
    """A copy of a parsed JSON value with NULs escaped; refuses lone surrogates."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError as error:
            raise _NotRepresentableError("lone surrogate") from error
        return _escape_nul(value)
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    return value


NOT_JSON: Final = object()


def parse_json(text: str) -> Any:
    """The JSON value of ``text`` ready for jsonb, or ``NOT_JSON``. ``null`` counts as not JSON:
    a NULL event_data would read as "no event"."""
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_int=_bounded_int)
        return NOT_JSON if value is None else _storable(value)
    except (ValueError, RecursionError):
        return NOT_JSON


def text_of(data: bytes) -> str:
    """Bytes as text: UTF-8, with invalid bytes written as ``\\xNN`` escapes, NULs escaped."""
    return _escape_nul(data.decode("utf-8", errors="backslashreplace"))


def decode_original(original: bytes | str) -> tuple[Any, str | None]:
    """``(event_data, event_text)`` for an original message: its JSON, or its text verbatim."""
    if isinstance(original, bytes):
        try:
            text = original.decode("utf-8")
        except UnicodeDecodeError:
            return None, text_of(original)
    else:
        text = original
    value = parse_json(text)
    if value is NOT_JSON:
        return None, storable_text(text)
    return value, None


def json_or_text(data: bytes) -> Any:
    """A message as one JSON value: its JSON when jsonb can hold it exactly, else its text
    (``decode_original``'s two halves in one)."""
    value, text = decode_original(data)
    return value if text is None else text
