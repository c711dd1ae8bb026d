"""One JSON access line per request, and the request's log context.

Every log line written while a request is handled carries its correlation id and the order,
variant or dead-letter row its path names (``shared.logs.log_context``); when it is answered,
one ``request`` line says method, route template, status, duration and those ids. Ids learnt
while handling (a new order's id) are added with ``annotate_request``.

The raw path is never logged: share tokens are in it, and a route template says the same.
Probes and scrapes (``/health``, ``/ready``, ``/metrics``) are logged at debug level unless they
fail, so that a scraper every few seconds does not drown the log.
"""

import contextvars
import logging
import time
from typing import Any, Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from services.api.common.correlation import correlation_id_of
from shared.logs import log_context

__all__ = ["AccessLogMiddleware", "annotate_request"]

_log = logging.getLogger("serenade.api.access")
# Path parameters that name something worth finding a request by, as the log fields they become.
_ID_PARAMETERS: Final = {"order_id": "order_id", "variant_id": "variant_id", "job_id": "job_id"}
_QUIET_ROUTES: Final = frozenset({"/health", "/ready", "/metrics"})
_fields: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "serenade_access_fields", default=None
)


def annotate_request(**ids: object) -> None:
    """Put ``ids`` (None values are left out) on the current request's access line."""
    fields = _fields.get()
    if fields is not None:
        fields.update({name: str(value) for name, value in ids.items() if value is not None})


class AccessLogMiddleware:
    """Sets the request's log context and writes its access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        correlation_id = correlation_id_of(scope)
        parameters: dict[str, Any] = dict(scope.get("path_params") or {})
        ids = {
            field: str(parameters[name])
            for name, field in _ID_PARAMETERS.items()
            if parameters.get(name) is not None
        }
        fields = dict(ids)
        token = _fields.set(fields)

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            with log_context(correlation_id=correlation_id, **ids):
                await self.app(scope, receive, recording_send)
        finally:
            _fields.reset(token)
            route = str(scope.get("path_template") or "unmatched")
            level = logging.INFO
            if status >= 500:
                level = logging.ERROR
            elif route in _QUIET_ROUTES:
                level = logging.DEBUG
            _log.log(
                level,
                "request",
                extra={
                    "method": str(scope.get("method", "GET")),
                    "route": route,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "correlation_id": correlation_id,
                    **fields,
                },
            )
