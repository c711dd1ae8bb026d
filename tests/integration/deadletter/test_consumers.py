"""The dead-letter service's durables are provisioned like every service's
(``shared.stream.ensure_consumer``): a stale one is brought up to date, not kept with a warning."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import nats
from nats.js.api import AckPolicy, ConsumerConfig

from services.deadletter.consumers import (
    ACK_WAIT_SECONDS,
    ADVISORY_DURABLE,
    ENVELOPE_DURABLE,
    MAX_ACK_PENDING,
    advisory_consumer_config,
    ensure_consumers,
    envelope_consumer_config,
)
from services.launcher import EmbeddedNats
from shared.events import STREAM_NAME
from shared.stream import ADVISORY_STREAM, ensure_consumer, ensure_stream

if TYPE_CHECKING:
    from pathlib import Path


async def test_stale_durables_are_updated_or_recreated_at_start(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    nc = await nats.connect(server.start())
    try:
        js = nc.jetstream()
        await ensure_stream(js)
        # Left by an older version: other numbers (editable), and another ack policy (not).
        await js.add_consumer(
            STREAM_NAME, replace(envelope_consumer_config(), ack_wait=5.0, max_ack_pending=10)
        )
        await js.add_consumer(
            ADVISORY_STREAM,
            ConsumerConfig(
                name=ADVISORY_DURABLE, durable_name=ADVISORY_DURABLE, ack_policy=AckPolicy.ALL
            ),
        )

        await ensure_consumers(js)

        envelopes = await js.consumer_info(STREAM_NAME, ENVELOPE_DURABLE)
        assert (envelopes.config.ack_wait, envelopes.config.max_ack_pending) == (
            ACK_WAIT_SECONDS,
            MAX_ACK_PENDING,
        )
        advisories = await js.consumer_info(ADVISORY_STREAM, ADVISORY_DURABLE)
        assert advisories.config.ack_policy == AckPolicy.EXPLICIT
        assert advisories.config.max_deliver == -1
        # Settings the code leaves to the server do not count as differences at the next start.
        assert await ensure_consumer(js, STREAM_NAME, envelope_consumer_config()) == "unchanged"
        assert await ensure_consumer(js, ADVISORY_STREAM, advisory_consumer_config()) == "unchanged"
    finally:
        await nc.close()
        server.stop()
