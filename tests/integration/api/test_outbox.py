"""The outbox: events reach JetStream exactly once, also across a NATS outage and an API crash
between commit and publish. Each outage test has its own database and nats-server."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

import httpx
import nats
import orjson
import pytest
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError

from services.api.app import create_app
from services.launcher import EmbeddedNats, ServiceProcess, free_port
from shared.db import connect
from shared.events import STREAM_NAME
from tests.helpers import SubjectRecorder, wait_for
from tests.integration.api.conftest import api_settings, serve
from tests.integration.api.support import ORDER, bearer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.conftest import DatabaseFactory
    from tests.integration.api.support import World


async def stream_events(url: str) -> list[tuple[str, dict[str, Any]]]:
    """Every message in the stream: (its Nats-Msg-Id, its payload)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        state = (await js.stream_info(STREAM_NAME)).state
        found = []
        for sequence in range(state.first_seq, state.last_seq + 1):
            message = await js.get_msg(STREAM_NAME, sequence)
            headers = message.headers or {}
            found.append((headers.get("Nats-Msg-Id", ""), orjson.loads(message.data or b"{}")))
        return found
    finally:
        await nc.close()


async def outbox_ids(dsn: str, *, unpublished: bool = False) -> list[str]:
    conn = await connect(dsn)
    try:
        where = " WHERE published_at IS NULL" if unpublished else ""
        rows = await conn.fetch(f"SELECT event_id FROM outbox{where} ORDER BY id")
        return [str(row["event_id"]) for row in rows]
    finally:
        await conn.close()


def assert_each_event_once(outbox: list[str], stream: list[tuple[str, dict[str, Any]]]) -> None:
    counts = Counter(event_id for event_id, _ in stream)
    assert sorted(counts) == sorted(outbox)
    assert set(counts.values()) == {1}
    assert all(payload["event_id"] == event_id for event_id, payload in stream)


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path / "nats")
    yield server
    server.stop()


@pytest.fixture
async def own_database(make_database: DatabaseFactory) -> str:
    return await make_database()


async def test_the_stream_is_ensured_at_start_as_the_contract_says(
    client: httpx.AsyncClient, nats_url: str
) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()

    async def stream_config() -> StreamConfig | None:
        try:
            return (await js.stream_info(STREAM_NAME)).config
        except NotFoundError:
            return None

    try:
        config = await wait_for(stream_config, timeout=15, what="the stream")
    finally:
        await nc.close()

    assert config.subjects == ["serenade.>"]
    assert config.storage == StorageType.FILE
    assert (config.duplicate_window or 0) >= 120


async def test_an_orders_events_reach_the_stream_with_their_ids_as_msg_ids(
    client: httpx.AsyncClient, world: World, nats_url: str
) -> None:
    recorder = await SubjectRecorder().start(nats_url, "serenade.>")
    try:
        order = await world.order(client)
        events = await world.outbox(order["id"])

        def arrived() -> list[Any]:
            ids = {msg.headers.get("Nats-Msg-Id") for msg in recorder.messages if msg.headers}
            return [e for e in events if e["event_id"] in ids]

        async def all_arrived() -> bool:
            return len(arrived()) == len(events)

        await wait_for(all_arrived, timeout=15, what="the order's events on NATS")
    finally:
        await recorder.stop()
    subjects = {msg.subject for msg in recorder.messages if msg.headers}
    assert {"serenade.orders.created", "serenade.variants.requested"} <= subjects


async def test_orders_are_accepted_while_nats_is_down_and_their_events_go_out_once_after(
    own_nats: EmbeddedNats, own_database: str, tmp_path: Path
) -> None:
    url = own_nats.start()
    app = create_app(api_settings(own_database, url, tmp_path))
    user = bearer(uuid.uuid4())

    async with serve(app) as client:

        async def nothing_unpublished() -> bool:
            return await outbox_ids(own_database, unpublished=True) == []

        await client.post("/v1/orders", json=ORDER, headers=user)
        await wait_for(nothing_unpublished, timeout=20, what="the first order's events published")

        await asyncio.to_thread(own_nats.stop)

        async def not_ready() -> httpx.Response | None:
            response = await client.get("/ready")
            return response if response.status_code == 503 else None

        ready = await wait_for(not_ready, timeout=15, what="/ready to notice NATS is down")
        assert ready.json()["checks"] == {"postgres": "ok", "nats": "unavailable"}
        during = [
            await client.post("/v1/orders", json=ORDER | {"variant_count": 1}, headers=user)
            for _ in range(3)
        ]
        assert [response.status_code for response in during] == [201] * 3
        assert len(await outbox_ids(own_database, unpublished=True)) == 3 * 2

        await asyncio.to_thread(own_nats.start)
        await wait_for(nothing_unpublished, timeout=60, what="the outage's events published")

    assert_each_event_once(await outbox_ids(own_database), await stream_events(url))


async def test_events_committed_before_a_crash_are_published_after_restart(
    own_nats: EmbeddedNats, own_database: str, tmp_path: Path
) -> None:
    # NATS is not running yet: whatever the API commits stays unpublished until it is.
    own_nats.start()
    url = own_nats.url
    own_nats.stop()
    port = free_port()
    settings = api_settings(own_database, url, tmp_path, api_port=port)
    api = ServiceProcess(["api"], settings, tmp_path / "api.log")
    base = f"http://127.0.0.1:{port}"
    user = bearer(uuid.uuid4())

    async with httpx.AsyncClient(base_url=base, timeout=10) as client:

        async def healthy() -> bool:
            try:
                return (await client.get("/health")).status_code == 200
            except httpx.TransportError:
                return False

        api.start()
        try:
            await wait_for(healthy, timeout=30, what=f"the API to start:\n{api.log()}")
            created = [
                await client.post("/v1/orders", json=ORDER | {"variant_count": 2}, headers=user)
                for _ in range(2)
            ]
            assert [response.status_code for response in created] == [201, 201]
            pending = await outbox_ids(own_database, unpublished=True)
            assert len(pending) == 2 * 3

            api.kill()  # between commit and publish
            await asyncio.to_thread(own_nats.start)
            api.start()
            await wait_for(healthy, timeout=30, what=f"the API to restart:\n{api.log()}")

            async def nothing_unpublished() -> bool:
                return await outbox_ids(own_database, unpublished=True) == []

            await wait_for(nothing_unpublished, timeout=60, what="the events to be published")
        finally:
            api.kill()

    assert_each_event_once(await outbox_ids(own_database), await stream_events(url))
