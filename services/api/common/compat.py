"""Where the API reaches into uvicorn's undocumented parts, and the version it was written for
(``tests/unit/test_compat.py`` fails on any other: read this again before upgrading). Both
reaches are behaviour, not speed: uvicorn offers no documented way to either.

1. ``HookedServer``: ``uvicorn.Server.shutdown`` overridden so that something (the API ends its
   event streams) runs as shutdown begins, before uvicorn waits for open responses.

2. ``request_deadline_protocol``: uvicorn's HTTP protocol classes (``http=``) with a mixin that
   uses their internals (``cycle``, ``more_body``, ``response_complete``, the transport): a
   deadline for reading each request. A client that sends its headers or its body too slowly
   is answered 408 and cut off, instead of holding a connection (and a task waiting on its
   body) for ever. uvicorn bounds only the idle time between requests (keep-alive), not a
   request in progress: one byte a second keeps a connection open indefinitely, and a few
   hundred such clients exhaust the server. The deadline starts when a connection opens or a
   request's first byte arrives, and is met once the whole request (headers and body) is read;
   what happens after that (a long response, an event stream) is not bounded here. Works with
   either of uvicorn's HTTP/1.1 implementations.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
from typing import Any, Final

import orjson
import uvicorn

__all__ = ["REQUEST_READ_TIMEOUT", "WRITTEN_FOR", "HookedServer", "request_deadline_protocol"]

# Distribution name -> the version whose internals this module relies on.
WRITTEN_FOR: Final = {"uvicorn": "0.54.0"}

# Seconds a client has to send a whole request: an order (at most 64 KiB) takes well under a
# second on any working connection. Behind a proxy, the proxy's own timeouts apply first.
REQUEST_READ_TIMEOUT = 10.0


def _timeout_response(seconds: float) -> bytes:
    body = orjson.dumps(
        {
            "type": "about:blank",
            "title": "Request Timeout",
            "status": 408,
            "detail": f"the request was not received within {seconds:g} s",
        }
    )
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class _RequestDeadline:
    """Mixed into a uvicorn HTTP protocol class (which provides the attributes below)."""

    request_timeout: float = REQUEST_READ_TIMEOUT
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    cycle: Any
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self._reading():
            self._arm()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)  # type: ignore[misc]
        cycle = self.cycle
        if cycle is not None and not cycle.more_body:
            self._disarm()  # the whole request is in

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _reading(self) -> bool:
        cycle = self.cycle
        return cycle is None or cycle.response_complete or cycle.more_body

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or not cycle.response_started:
            self.transport.write(_timeout_response(self.request_timeout))
        # The handler waiting on the body gets http.disconnect and gives up.
        self.transport.close()


def request_deadline_protocol(
    timeout: float = REQUEST_READ_TIMEOUT, *, implementation: str = "auto"
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class (``http=``) with the deadline: httptools when installed
    (uvicorn's own ``auto`` choice), else h11; or the ``implementation`` named."""
    use_httptools = implementation == "httptools" or (
        implementation == "auto" and importlib.util.find_spec("httptools") is not None
    )
    if use_httptools:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: PLC0415

        base: type[asyncio.Protocol] = HttpToolsProtocol
    else:
        from uvicorn.protocols.http.h11_impl import H11Protocol  # noqa: PLC0415

        base = H11Protocol
    return type(f"Deadline{base.__name__}", (_RequestDeadline, base), {"request_timeout": timeout})


class HookedServer(uvicorn.Server):
    """``uvicorn.Server`` whose ``before_shutdown`` runs as shutdown begins (before uvicorn
    waits up to ``timeout_graceful_shutdown`` for open responses)."""

    def before_shutdown(self) -> None:
        """What to end first; nothing here."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.before_shutdown()
        await super().shutdown(sockets)
