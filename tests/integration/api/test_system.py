"""Health, readiness, metrics, the OpenAPI document, correlation ids, and PostgreSQL going away."""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from services.api.app import create_app
from services.launcher import free_port
from tests.helpers import wait_for
from tests.integration.api.conftest import api_settings, serve
from tests.integration.api.support import ORDER

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

    from tests.integration.api.support import World


async def test_health_answers_while_the_process_runs(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_ready_when_postgres_and_nats_answer(client: httpx.AsyncClient) -> None:
    async def ready() -> httpx.Response | None:
        response = await client.get("/ready")
        return response if response.status_code == 200 else None

    # NATS connects in the background right after start.
    response = await wait_for(ready, timeout=15, what="/ready to answer 200")
    assert response.json()["checks"] == {"postgres": "ok", "nats": "ok"}


async def test_metrics_count_requests_by_route_and_show_the_outbox_backlog(
    client: httpx.AsyncClient, world: World
) -> None:
    await world.order(client)
    await client.get(f"/v1/orders/{uuid.uuid4()}", headers=world.a)

    text = (await client.get("/metrics")).text

    assert 'serenade_http_requests_total{method="POST",route="/v1/orders",status="201"}' in text
    assert 'method="GET",route="/v1/orders/{order_id}",status="404"' in text
    assert "serenade_http_request_duration_seconds_bucket" in text
    assert "serenade_outbox_backlog " in text


async def test_every_response_carries_a_correlation_id(client: httpx.AsyncClient) -> None:
    made = await client.get("/health")
    kept = await client.get("/health", headers={"X-Correlation-Id": "abc-123"})
    refused = await client.get("/health", headers={"X-Correlation-Id": "bad id\twith spaces"})
    routed_404 = await client.get("/nowhere", headers={"X-Correlation-Id": "abc-404"})

    assert len(made.headers["X-Correlation-Id"]) >= 16
    assert kept.headers["X-Correlation-Id"] == "abc-123"
    assert refused.headers["X-Correlation-Id"] != "bad id\twith spaces"
    assert routed_404.headers["X-Correlation-Id"] == "abc-404"
    assert routed_404.json()["correlation_id"] == "abc-404"


@pytest.fixture(scope="module")
async def schema(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


EXPECTED_OPERATIONS = {
    ("post", "/v1/orders"): "createOrder",
    ("get", "/v1/orders"): "listOrders",
    ("get", "/v1/orders/{order_id}"): "getOrder",
    ("delete", "/v1/orders/{order_id}"): "cancelOrder",
    ("post", "/v1/payments/webhook"): "paymentWebhook",
    ("get", "/v1/orders/{order_id}/events"): "streamOrderEvents",
    ("post", "/v1/orders/{order_id}/variants"): "addVariant",
    ("post", "/v1/variants/{variant_id}/retry"): "retryVariant",
    ("get", "/v1/variants/{variant_id}/audio"): "getVariantAudio",
    ("get", "/v1/share/{share_token}"): "getShare",
    ("get", "/v1/share/{share_token}/audio"): "getSharedAudio",
    ("get", "/media/{user_id}/{order_id}/{file}"): "getMedia",
    ("get", "/v1/admin/failed-jobs"): "listFailedJobs",
    ("get", "/v1/admin/failed-jobs/{job_id}"): "getFailedJob",
    ("post", "/v1/admin/failed-jobs/{job_id}/replay"): "replayFailedJob",
    ("get", "/health"): "health",
    ("get", "/ready"): "ready",
    ("get", "/metrics"): "metrics",
}


def test_the_openapi_document_names_every_operation(schema: dict[str, Any]) -> None:
    found = {
        (method, path): operation["operationId"]
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }
    assert found == EXPECTED_OPERATIONS
    for item in schema["paths"].values():
        for operation in item.values():
            assert operation.get("summary") or operation.get("description")


def test_the_openapi_document_describes_bodies_errors_and_the_bearer_scheme(
    schema: dict[str, Any],
) -> None:
    create = schema["paths"]["/v1/orders"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/CreateOrder")
    assert {"201", "200", "400", "401", "409"} <= set(create["responses"])
    assert "application/problem+json" in create["responses"]["409"]["content"]
    assert create["security"] == [{"BearerToken": []}]
    scheme = schema["components"]["securitySchemes"]["BearerToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "security" not in schema["paths"]["/v1/share/{share_token}"]["get"]


def test_every_documented_error_is_problem_details(schema: dict[str, Any]) -> None:
    """A generated client reads each documented error as a Problem: none may be Litestar's
    default error shape."""
    problem = "#/components/schemas/Problem"
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                content = response.get("content", {})
                assert list(content) == ["application/problem+json"], (method, path, status)
                assert content["application/problem+json"]["schema"]["$ref"] == problem


async def test_the_docs_page_is_browsable(client: httpx.AsyncClient) -> None:
    response = await client.get("/schema")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]


async def test_the_docs_page_loads_every_file_from_the_api_itself(
    client: httpx.AsyncClient,
) -> None:
    """Offline, the docs page still works: nothing it loads comes from another site, every
    file it names is served here, and the viewer is the pinned Swagger UI."""
    page = (await client.get("/schema")).text
    loaded = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page)
    assert loaded, page
    assert [url for url in loaded if not url.startswith("/schema/assets/")] == []
    expected_types = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    for url in loaded:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert asset.headers["content-type"].startswith(expected_types[suffix]), url
        assert len(asset.content) > 1000, url
    bundle = (await client.get("/schema/assets/swagger-ui-bundle.js")).text
    assert 'PACKAGE_VERSION:"5.24.2"' in bundle, "the viewer changed: update docs_viewer.py"
    assert "SwaggerUIBundle" in page
    # Only the viewer's own files are served from the package, nothing else of it.
    missing = await client.get("/schema/assets/swagger-editor-bundle.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_with_postgres_unreachable_requests_get_503_quickly_and_ready_says_so(
    nats_url: str, tmp_path: Path, world: World
) -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/serenade"
    app = create_app(api_settings(nowhere, nats_url, tmp_path))

    async with serve(app) as client:
        started = time.monotonic()
        created = await client.post("/v1/orders", json=ORDER, headers=world.a)
        listed = await client.get("/v1/orders", headers=world.a)
        read = await client.get(f"/v1/orders/{uuid.uuid4()}", headers=world.a)
        shared = await client.get(f"/v1/share/{uuid.uuid4()}")
        ready = await client.get("/ready")
        elapsed = time.monotonic() - started

    statuses = (created, listed, read, shared, ready)
    assert [response.status_code for response in statuses] == [503] * 5
    assert read.headers["content-type"] == "application/problem+json"
    assert created.headers["content-type"] == "application/problem+json"
    assert "database" in created.json()["detail"]
    assert "Traceback" not in created.text
    assert ready.json()["checks"]["postgres"] == "unavailable"
    assert elapsed < 15
