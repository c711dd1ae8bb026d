"""A request must arrive whole within the API's deadline (drill 7): a client trickling its
headers or its body, or connecting and sending nothing, gets 408 problem details and is cut off
instead of holding a connection for ever; a kept-alive connection is not cut between requests.
Served by uvicorn with each of its HTTP/1.1 implementations installed here."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import time
import uuid
from typing import TYPE_CHECKING

import httpx
import pytest
import uvicorn

from services.api.app import create_app
from services.api.common.compat import request_deadline_protocol
from services.launcher import free_port
from shared.auth import issue_token
from tests.helpers import wait_for
from tests.integration.api.conftest import api_settings
from tests.integration.api.support import SECRET

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

DEADLINE = 1.0
IMPLEMENTATIONS = ["h11"] + (["httptools"] if importlib.util.find_spec("httptools") else [])


@pytest.fixture(params=IMPLEMENTATIONS)
async def api_port(
    request: pytest.FixtureRequest, database_url: str, nats_url: str, tmp_path: Path
) -> AsyncIterator[int]:
    port = free_port()
    app = create_app(api_settings(database_url, nats_url, tmp_path))
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="on",
        log_config=None,
        ws="none",
        http=request_deadline_protocol(DEADLINE, implementation=request.param),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    try:
        await wait_for(started, timeout=20, what="uvicorn to start")
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


async def _send(
    port: int, head: bytes, trickle: bytes = b"", every: float = 0.2
) -> tuple[float, bytes]:
    """Send ``head``, then ``trickle`` a byte every ``every`` s until the server answers or
    hangs up; the seconds it took and what it answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    reading = asyncio.ensure_future(reader.read())
    try:
        writer.write(head)
        for byte in trickle:
            done, _ = await asyncio.wait({reading}, timeout=every)
            if done:
                break
            writer.write(bytes([byte]))
        answer = await asyncio.wait_for(reading, 10 * DEADLINE)
    finally:
        reading.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return time.monotonic() - started, answer


def _bearer() -> str:
    return issue_token(SECRET, user_id=uuid.uuid4())


async def test_a_body_sent_too_slowly_is_answered_408_and_cut_off(api_port: int) -> None:
    body = b'{"recipient_name": "Slow", "occasion": "other", "genre": "pop"}'
    head = (
        "POST /v1/orders HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {_bearer()}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()

    took, answer = await _send(api_port, head, body)

    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"application/problem+json" in answer
    assert DEADLINE <= took < 5 * DEADLINE


async def test_headers_sent_too_slowly_are_answered_408(api_port: int) -> None:
    took, answer = await _send(api_port, b"GET /health HTTP/1.1\r\n", b"Host: slow-client\r\n\r\n")

    assert answer.startswith(b"HTTP/1.1 408 ")
    assert took < 5 * DEADLINE


async def test_a_connection_that_sends_nothing_is_closed(api_port: int) -> None:
    took, answer = await _send(api_port, b"")

    assert answer.startswith(b"HTTP/1.1 408 ")
    assert took < 5 * DEADLINE


async def test_a_kept_alive_connection_is_not_cut_between_requests(api_port: int) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as client:
        first = await client.get("/health")
        await asyncio.sleep(1.5 * DEADLINE)  # idle past the deadline, inside the keep-alive
        second = await client.get("/health")

    assert (first.status_code, second.status_code) == (200, 200)


async def test_a_client_cut_off_counts_as_no_server_error(api_port: int) -> None:
    head = (
        "POST /v1/orders HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {_bearer()}\r\nContent-Length: 100\r\n\r\n{{"
    ).encode()
    await _send(api_port, head, b'"a": 1')

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as client:
        metrics = (await client.get("/metrics")).text

    assert 'status="500"' not in metrics
