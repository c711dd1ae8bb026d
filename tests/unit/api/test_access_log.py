"""The API's access line and request log context, on a small Litestar app."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest
from litestar import Litestar, get
from litestar.params import FromPath

from services.api.common.access_log import AccessLogMiddleware, annotate_request
from shared.logs import JsonFormatter

if TYPE_CHECKING:
    from collections.abc import Iterator

NEW_VARIANT = uuid.UUID("00000000-0000-4000-8000-000000000001")


class _Lines(logging.Handler):
    """Formats each record as it is written (the log context is only there at that moment)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("api"))
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(self.format(record)))


@pytest.fixture
def lines() -> Iterator[list[dict[str, Any]]]:
    handler = _Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@get("/v1/orders/{order_id:uuid}/things", sync_to_thread=False)
def things(order_id: FromPath[uuid.UUID]) -> dict[str, str]:
    logging.getLogger("tester").info("working on it")
    annotate_request(variant_id=NEW_VARIANT)
    return {"order_id": str(order_id)}


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/boom", sync_to_thread=False)
def boom() -> None:
    raise RuntimeError("boom")


def client() -> httpx.AsyncClient:
    app = Litestar([things, health, boom], middleware=[AccessLogMiddleware], logging_config=None)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://api")


async def test_one_access_line_with_route_status_duration_and_ids(
    lines: list[dict[str, Any]],
) -> None:
    order_id = uuid.uuid4()
    async with client() as api:
        response = await api.get(
            f"/v1/orders/{order_id}/things", headers={"X-Correlation-Id": "req-7"}
        )
    assert response.status_code == 200
    [inner] = [line for line in lines if line["message"] == "working on it"]
    assert (inner["correlation_id"], inner["order_id"]) == ("req-7", str(order_id))
    [access] = [line for line in lines if line["message"] == "request"]
    assert access["level"] == "info"
    assert access["method"] == "GET"
    assert access["route"] == "/v1/orders/{order_id}/things"
    assert access["status"] == 200
    assert access["duration_ms"] >= 0
    assert access["correlation_id"] == "req-7"
    assert access["order_id"] == str(order_id)
    assert access["variant_id"] == str(NEW_VARIANT)  # learnt while handling
    assert str(order_id) not in access["route"], "the raw path is never logged"


async def test_probes_are_quiet_and_failures_loud(lines: list[dict[str, Any]]) -> None:
    async with client() as api:
        await api.get("/health")
        await api.get("/boom")
    levels = {line["route"]: line["level"] for line in lines if line["message"] == "request"}
    assert levels == {"/health": "debug", "/boom": "error"}
    [failed] = [line for line in lines if line["message"] == "request" and line["route"] == "/boom"]
    assert failed["status"] == 500
    assert failed["correlation_id"]  # made up when the client sent none
