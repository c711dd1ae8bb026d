"""PostgreSQL stopped while envelopes arrive: `serenade deadletter` (a child process) acknowledges
none of them, and stores every one once PostgreSQL is back."""

from __future__ import annotations

from typing import TYPE_CHECKING

import nats
import orjson

from services.deadletter.consumers import ENVELOPE_DURABLE
from services.launcher import EmbeddedNats, EmbeddedPostgres, ServiceProcess, migrate
from shared.db import connect
from shared.events import STREAM_NAME
from shared.settings import Settings
from tests.helpers import wait_for
from tests.integration.deadletter.support import envelope_for, publish_envelope

if TYPE_CHECKING:
    from pathlib import Path

    from nats.js import JetStreamContext


async def _stored_ids(dsn: str) -> set[str]:
    try:
        conn = await connect(dsn, timeout=2)
    except OSError:
        return set()
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL ROLE service_role")
            rows = await conn.fetch("SELECT message_id FROM failed_jobs")
    finally:
        await conn.close()
    return {row["message_id"] for row in rows}


async def _consumer_ready(js: JetStreamContext) -> bool:
    try:
        info = await js.consumer_info(STREAM_NAME, ENVELOPE_DURABLE)
    except nats.js.errors.NotFoundError:
        return False
    return (info.num_waiting or 0) > 0  # a pull request is waiting: the subscriber runs


async def test_envelopes_wait_while_postgres_is_down_and_none_is_lost(tmp_path: Path) -> None:
    postgres = EmbeddedPostgres(tmp_path / "postgres", durable=False)
    dsn = postgres.start()
    await migrate(dsn)
    nats_server = EmbeddedNats(tmp_path / "nats")
    nats_url = nats_server.start()
    settings = Settings(
        database_url=dsn,
        nats_url=nats_url,
        jwt_secret="test-secret-" + "x" * 32,
        data_dir=tmp_path / "data",
    )
    service = ServiceProcess(["deadletter"], settings, tmp_path / "deadletter.log").start()
    client = await nats.connect(nats_url)
    js = client.jetstream()
    try:
        await wait_for(lambda: _consumer_ready(js), timeout=60, what="the dead-letter consumer")
        before = envelope_for({"event_id": "before-the-outage"}, service="api")
        await publish_envelope(js, before)
        await wait_for(lambda: _stored_ids(dsn), what="the first row")

        postgres.stop()
        during = [envelope_for({"n": n}, service="api") for n in range(5)]
        for envelope in during:
            await publish_envelope(js, envelope)

        async def retried() -> bool:
            info = await js.consumer_info(STREAM_NAME, ENVELOPE_DURABLE)
            return (info.num_redelivered or 0) >= len(during)

        # Every envelope was delivered, not acknowledged, and came back: none was dropped.
        await wait_for(retried, timeout=30, what="the envelopes to be redelivered")
        info = await js.consumer_info(STREAM_NAME, ENVELOPE_DURABLE)
        assert info.num_ack_pending + (info.num_pending or 0) >= len(during)

        assert postgres.start() == dsn
        wanted = {str(e.event_id) for e in [before, *during]}

        async def all_stored() -> bool:
            return await _stored_ids(dsn) == wanted

        await wait_for(all_stored, timeout=60, what="every envelope stored")

        async def all_acknowledged() -> bool:
            info = await js.consumer_info(STREAM_NAME, ENVELOPE_DURABLE)
            return bool(info.num_ack_pending == 0 and info.num_pending == 0)

        await wait_for(all_acknowledged, timeout=30, what="every envelope acknowledged")
        assert service.alive()
        log_lines = [line for line in service.log().splitlines() if line.startswith("{")]
        stored = [orjson.loads(line) for line in log_lines]
        assert sum(line.get("message") == "failure stored" for line in stored) == len(wanted)
        assert any("retrying" in line.get("message", "") for line in stored)
        assert service.terminate(timeout=30) == 0
    finally:
        service.kill()
        await client.close()
        nats_server.stop()
        postgres.stop()
