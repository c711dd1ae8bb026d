"""An app served over real HTTP by uvicorn in this event loop, for what httpx's ASGI transport
cannot do: it buffers whole responses (no streams) and a browser cannot reach it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import TYPE_CHECKING

import uvicorn

from services.api.live.server import StreamClosingServer
from tests.helpers import wait_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar import Litestar

__all__ = ["LiveServer", "serve_over_http"]


class LiveServer:
    """The running server: its base URL, and a way to stop it as SIGTERM would."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], url: str) -> None:
        self._server = server
        self._task = task
        self.url = url

    async def stop(self) -> None:
        self._server.should_exit = True
        await self._task


@contextlib.asynccontextmanager
async def serve_over_http(
    app: Litestar, *, send_buffer: int | None = None
) -> AsyncIterator[LiveServer]:
    """Serve ``app`` (lifespan included) on a free local port, as ``serenade api`` does.

    ``send_buffer`` fixes the kernel's send buffer of every accepted connection (they inherit
    it from the listening socket), so a client that stops reading blocks the server's writes
    after that many bytes, as over a real network, instead of after megabytes on loopback.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,
        access_log=False,
        ws="none",
        timeout_graceful_shutdown=5,
        backlog=1024,
    )
    server = StreamClosingServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn")

    async def settled() -> bool:
        return server.started or task.done()

    try:
        await wait_for(settled, timeout=30, what="uvicorn to start")
        if task.done():
            task.result()  # raises why it could not start
            raise RuntimeError("uvicorn stopped before it started")
        yield LiveServer(server, task, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await task
        sock.close()
