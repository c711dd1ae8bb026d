"""The workers' HTTP endpoint (shared.telemetry, FastStream's ASGI routes): routes, formats, a
real socket on port 0, and a taken port that leaves the service running without it."""

from __future__ import annotations

import logging
import socket

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from shared.settings import Settings
from shared.telemetry import TelemetryServer, telemetry_app, telemetry_server


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("serenade_test_things", "Things counted.", registry=registry).inc(3)
    return registry


def client_for(registry: CollectorRegistry, *, asyncapi: bytes | None = None) -> httpx.AsyncClient:
    app = telemetry_app(
        service="tester",
        registry=registry,
        asyncapi=(lambda: asyncapi) if asyncapi is not None else None,
    )
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://telemetry")


async def test_metrics_are_served_as_prometheus_text_or_openmetrics(
    registry: CollectorRegistry,
) -> None:
    async with client_for(registry) as client:
        text = await client.get("/metrics")
        openmetrics = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain")
    assert "serenade_test_things_total 3.0" in text.text
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")


async def test_health_asyncapi_head_and_unknown_paths(registry: CollectorRegistry) -> None:
    async with client_for(registry, asyncapi=b'{"asyncapi": "3.0.0"}') as client:
        health = await client.get("/health")
        document = await client.get("/asyncapi.json")
        head = await client.head("/health")
        missing = await client.get("/nothing")
        posted = await client.post("/metrics")
    assert (health.status_code, health.json()) == (200, {"status": "ok", "service": "tester"})
    assert document.json() == {"asyncapi": "3.0.0"}
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == health.headers["content-length"]
    assert missing.status_code == 404
    assert (posted.status_code, posted.headers["allow"]) == (405, "GET, HEAD")


async def test_without_a_document_there_is_no_asyncapi_route(registry: CollectorRegistry) -> None:
    async with client_for(registry) as client:
        assert (await client.get("/asyncapi.json")).status_code == 404


async def test_a_server_on_port_0_takes_a_free_port_and_stops(registry: CollectorRegistry) -> None:
    server = TelemetryServer(
        telemetry_app(service="tester", registry=registry, asyncapi=None),
        host="127.0.0.1",
        port=0,
    )
    await server.start()
    assert server.port
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{server.port}/metrics")
        assert "serenade_test_things_total" in response.text
    finally:
        await server.stop()
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{server.port}/health")


async def test_unset_port_means_no_endpoint() -> None:
    async with telemetry_server(Settings(metrics_port=None), service="tester") as server:
        assert server is None


async def test_a_taken_port_is_logged_and_the_service_runs_on_without_the_endpoint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings(metrics_host="127.0.0.1", metrics_port=port)
        with caplog.at_level(logging.ERROR, logger="serenade.telemetry"):
            async with telemetry_server(settings, service="tester") as server:
                assert server is None
    assert f"cannot serve /metrics on 127.0.0.1:{port}" in caplog.text
