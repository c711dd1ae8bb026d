"""The generator's durable pull consumer on ``serenade.variants.requested``, as the code wants
it; ``shared.stream.ensure_consumer`` keeps the server's copy equal to it at every start."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, ReplayPolicy

from shared.events import SUBJECT_VARIANT_REQUESTED

if TYPE_CHECKING:
    from shared.settings import Settings

__all__ = ["DURABLE", "MAX_ACK_PENDING", "consumer_config"]

DURABLE = "generator"
# Fleet-wide ceiling on requests handed out and not yet settled, delayed retries (nak with a
# delay) included. It is not how a process limits itself (each fetches only into a free slot),
# so it is set far above processes x concurrency: a low value would idle added processes. Room
# for sixteen processes at the default concurrency (1024) with their retries waiting.
MAX_ACK_PENDING = 32768
# Deliveries beyond the attempts: hand-backs at shutdown and requeues while the database is
# away also count. Past the limit the server gives up and announces it (MAX_DELIVERIES
# advisory), which the dead-letter service records: the backstop for a request that kills
# its process before the attempt is even counted.
_EXTRA_DELIVERIES = 10
# Pull requests the server keeps waiting at once: a few per process (the fetch loop has one).
_MAX_WAITING = 512


def consumer_config(settings: Settings) -> ConsumerConfig:
    """The consumer as the code wants it. Only fleet-wide settings go in (never a process's
    concurrency), so that processes with different local settings do not fight over it."""
    return ConsumerConfig(
        name=DURABLE,
        durable_name=DURABLE,
        description="serenade generator: one song variant per message",
        filter_subject=SUBJECT_VARIANT_REQUESTED,
        # A new consumer starts at the beginning: requests published before it existed count.
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.generator_ack_wait,
        max_deliver=settings.max_attempts + _EXTRA_DELIVERIES,
        max_ack_pending=MAX_ACK_PENDING,
        max_waiting=_MAX_WAITING,
        replay_policy=ReplayPolicy.INSTANT,
    )
