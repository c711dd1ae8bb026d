"""Observability end to end: ``serenade api``, ``serenade generator`` (whose provider always
fails, one attempt) and ``serenade deadletter`` as processes on their own nats-server and
database. One order with an ``X-Correlation-Id``: the id is found in the API's access line, in
the generator's log and in the failed_jobs rows; every service's /metrics moves."""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.launcher import EmbeddedNats, ServiceProcess, free_port
from shared.auth import issue_token
from shared.contract_docs import CONTRACT_SUBJECTS
from shared.db import Caller, create_pool, transaction
from tests.helpers import wait_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from dataclasses import dataclass
    from pathlib import Path

    import asyncpg

    from shared.settings import Settings
    from tests.conftest import DatabaseFactory
else:
    from dataclasses import dataclass

pytestmark = pytest.mark.slow

VARIANTS = 2
ORDER = {
    "recipient_name": "Ada",
    "occasion": "birthday",
    "genre": "pop",
    "mood": "joyful",
    "story": "She taught the machine to sing.",
    "variant_count": VARIANTS,
}
# Samples read before and after the order: (metric family, sample name, labels).
API_POSTS = ("serenade_http_requests", {"method": "POST", "route": "/v1/orders", "status": "201"})
GENERATOR_FAILED = ("serenade_generator_variants", {"outcome": "failed"})
GENERATOR_ERRORS = ("serenade_generator_attempts", {"result": "error"})
DEADLETTER_STORED = ("serenade_deadletter_rows_stored", {"reason": "envelope"})


def json_lines(text: str) -> list[dict[str, Any]]:
    """A service's JSON log lines (anything else is skipped)."""
    lines = []
    for line in text.splitlines():
        with contextlib.suppress(orjson.JSONDecodeError):
            value = orjson.loads(line)
            if isinstance(value, dict):
                lines.append(value)
    return lines


def counter(text: str, family: str, labels: dict[str, str]) -> float:
    """The ``_total`` sample of a counter whose labels include ``labels`` (0 when absent)."""
    for metric in text_string_to_metric_families(text):
        if metric.name != family:
            continue
        for sample in metric.samples:
            if sample.name == f"{family}_total" and labels.items() <= sample.labels.items():
                return float(sample.value)
    return 0.0


def families(text: str) -> set[str]:
    return {metric.name for metric in text_string_to_metric_families(text)}


@dataclass
class Stack:
    settings: Settings
    pool: asyncpg.Pool
    api: ServiceProcess
    generator: ServiceProcess
    deadletter: ServiceProcess
    api_url: str
    generator_url: str = ""
    deadletter_url: str = ""


async def telemetry_url(process: ServiceProcess) -> str:
    """The address of a worker's /metrics endpoint, from its log (it binds port 0)."""

    async def listening() -> str | None:
        assert process.alive(), f"{process.command[0]} exited:\n{process.log()}"
        for line in json_lines(process.log()):
            if line.get("message") == "telemetry endpoint listening":
                return f"http://127.0.0.1:{line['metrics_port']}"
        return None

    found: str = await wait_for(listening, timeout=30, what=f"{process.command[0]}'s endpoint")
    return found


@pytest.fixture
async def stack(
    tmp_path: Path,
    make_database: DatabaseFactory,
    settings_factory: Callable[..., Settings],
) -> AsyncIterator[Stack]:
    nats_server = EmbeddedNats(tmp_path / "nats")
    nats_url = nats_server.start()
    database_url = await make_database()
    api_port = free_port()
    settings = settings_factory(
        database_url=database_url,
        nats_url=nats_url,
        api_port=api_port,
        provider="instant",
        provider_failure_rate=1.0,
        max_attempts=1,
        retry_backoff=(0.1,),
        generator_ack_wait=5.0,
        generator_shutdown_grace=0.5,
        metrics_port=0,
    )
    pool = await create_pool(database_url, min_size=1, max_size=2)
    processes = {
        name: ServiceProcess([name], settings, tmp_path / f"{name}.log")
        for name in ("deadletter", "generator", "api")
    }
    for process in processes.values():
        process.start()
    try:
        built = Stack(
            settings=settings,
            pool=pool,
            api=processes["api"],
            generator=processes["generator"],
            deadletter=processes["deadletter"],
            api_url=f"http://127.0.0.1:{api_port}",
        )
        built.generator_url = await telemetry_url(built.generator)
        built.deadletter_url = await telemetry_url(built.deadletter)

        async def generator_ready() -> bool:
            assert built.generator.alive(), built.generator.log()
            return any(line.get("message") == "generator ready" for line in json_lines(
                built.generator.log()
            ))  # fmt: skip

        await wait_for(generator_ready, timeout=30, what="the generator to be ready")
        yield built
    finally:
        for process in processes.values():
            with contextlib.suppress(Exception):
                process.terminate(timeout=15)
        await pool.close()
        nats_server.stop()


async def scrape(client: httpx.AsyncClient, url: str) -> str:
    response = await client.get(f"{url}/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def failed_jobs(pool: asyncpg.Pool, correlation_id: str) -> list[dict[str, Any]]:
    async with transaction(pool, Caller.service()) as conn:
        rows = await conn.fetch(
            "SELECT service, subject, correlation_id, variant_id, error_type FROM failed_jobs"
            " WHERE correlation_id = $1",
            correlation_id,
        )
    return [dict(row) for row in rows]


async def test_one_correlation_id_runs_through_api_generator_and_failed_jobs_and_metrics_move(
    stack: Stack,
) -> None:
    correlation_id = f"obs-{uuid.uuid4().hex}"
    user = uuid.uuid4()
    token = issue_token(stack.settings.require_jwt_secret(), user_id=user)
    async with httpx.AsyncClient(timeout=10) as client:

        async def api_answers() -> bool:
            assert stack.api.alive(), stack.api.log()
            try:
                return (await client.get(f"{stack.api_url}/ready")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_for(api_answers, timeout=30, what="the API to be ready")
        before = {
            "api": await scrape(client, stack.api_url),
            "generator": await scrape(client, stack.generator_url),
            "deadletter": await scrape(client, stack.deadletter_url),
        }

        created = await client.post(
            f"{stack.api_url}/v1/orders",
            json=ORDER,
            headers={"Authorization": f"Bearer {token}", "X-Correlation-Id": correlation_id},
        )
        assert created.status_code == 201, created.text
        assert created.headers["X-Correlation-Id"] == correlation_id
        order = created.json()
        variant_ids = {variant["id"] for variant in order["variants"]}

        rows = await wait_for(
            lambda: _all_rows(stack.pool, correlation_id),
            timeout=30,
            what=f"{VARIANTS} failed_jobs rows\n--- generator:\n{stack.generator.log()[-3000:]}",
        )

        async def moved() -> dict[str, str] | None:
            after = {
                "api": await scrape(client, stack.api_url),
                "generator": await scrape(client, stack.generator_url),
                "deadletter": await scrape(client, stack.deadletter_url),
            }
            rose = (
                counter(after["api"], *API_POSTS) >= counter(before["api"], *API_POSTS) + 1
                and counter(after["generator"], *GENERATOR_FAILED)
                >= counter(before["generator"], *GENERATOR_FAILED) + VARIANTS
                and counter(after["generator"], *GENERATOR_ERRORS)
                >= counter(before["generator"], *GENERATOR_ERRORS) + VARIANTS
                and counter(after["deadletter"], *DEADLETTER_STORED)
                >= counter(before["deadletter"], *DEADLETTER_STORED) + VARIANTS
            )
            return after if rose else None

        after = await wait_for(moved, timeout=15, what="every service's counters to rise")

        # The workers' endpoint also answers /health and serves the AsyncAPI document.
        for url in (stack.generator_url, stack.deadletter_url):
            assert (await client.get(f"{url}/health")).status_code == 200
            document = (await client.get(f"{url}/asyncapi.json")).json()
            addresses = {channel["address"] for channel in document["channels"].values()}
            assert {s.address for s in CONTRACT_SUBJECTS if "{" not in s.address} <= addresses

    # failed_jobs: one row per variant, each with the request's correlation id.
    assert len(rows) == VARIANTS
    assert {str(row["variant_id"]) for row in rows} == variant_ids
    assert {row["service"] for row in rows} == {"generator"}
    assert {row["correlation_id"] for row in rows} == {correlation_id}

    # The API's access line: method, route, status, duration, the correlation and order ids.
    [access] = [
        line
        for line in json_lines(stack.api.log())
        if line.get("message") == "request" and line.get("correlation_id") == correlation_id
    ]
    assert access["service"] == "api"
    assert (access["method"], access["route"], access["status"]) == ("POST", "/v1/orders", 201)
    assert access["order_id"] == order["id"]
    assert access["duration_ms"] >= 0

    # The generator's lines about this order carry it too, with the order and variant ids.
    generator_lines = [
        line
        for line in json_lines(stack.generator.log())
        if line.get("correlation_id") == correlation_id
    ]
    outcomes = [line for line in generator_lines if line.get("message") == "variant"]
    assert {line["variant_id"] for line in outcomes} == variant_ids
    assert {line["order_id"] for line in outcomes} == {order["id"]}
    assert {line["outcome"] for line in outcomes} == {"failed"}
    assert all(line["service"] == "generator" for line in generator_lines)

    # So do the dead-letter service's lines about the rows it stored.
    stored = [
        line
        for line in json_lines(stack.deadletter.log())
        if line.get("message") == "failure stored" and line.get("correlation_id") == correlation_id
    ]
    assert {line["variant_id"] for line in stored} == variant_ids
    assert {line["order_id"] for line in stored} == {order["id"]}
    assert {(line["service"], line["failed_service"]) for line in stored} == {
        ("deadletter", "generator")
    }

    # Metrics present: each service's own families, and the histograms and gauges behind them.
    assert {"serenade_http_requests", "serenade_http_request_duration_seconds"} <= families(
        after["api"]
    )
    assert {
        "serenade_generator_variants",
        "serenade_generator_attempts",
        "serenade_generator_generation_duration_seconds",
        "serenade_generator_final_attempts",
        "serenade_generator_in_flight",
    } <= families(after["generator"])
    assert {"serenade_deadletter_rows_stored", "faststream_received_messages"} <= families(
        after["deadletter"]
    )


async def _all_rows(pool: asyncpg.Pool, correlation_id: str) -> list[dict[str, Any]] | None:
    rows = await failed_jobs(pool, correlation_id)
    return rows if len(rows) >= VARIANTS else None
