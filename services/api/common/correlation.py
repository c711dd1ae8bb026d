"""The correlation id of a request: taken from ``X-Correlation-Id`` or made, echoed in the
response, and put on every event the request causes."""

import re
import uuid
from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

from shared.events import CORRELATION_HEADER

__all__ = ["add_correlation_header", "correlation_id_of"]

# What we accept from a client: short and printable, so it is safe in logs and headers.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_STATE_KEY = "correlation_id"


def correlation_id_of(scope: Scope | Any) -> str:
    """The request's correlation id, decided once per request and kept in its scope state."""
    state: dict[str, Any] = scope.setdefault("state", {})
    known = state.get(_STATE_KEY)
    if isinstance(known, str):
        return known
    presented = None
    wanted = CORRELATION_HEADER.lower().encode()
    for name, value in scope.get("headers", ()):
        if name.lower() == wanted:
            presented = value.decode("latin-1").strip()
            break
    chosen = presented if presented and _ACCEPTABLE.match(presented) else uuid.uuid4().hex
    state[_STATE_KEY] = chosen
    return chosen


async def add_correlation_header(message: Message, scope: Scope) -> None:
    """``before_send`` hook: every HTTP response carries the correlation id."""
    if message["type"] == "http.response.start":
        headers = MutableScopeHeaders.from_message(message)
        headers[CORRELATION_HEADER] = correlation_id_of(scope)
