"""The generator's durable pull consumer on ``serenade.variants.requested``, and keeping the
server's copy of it equal to the code's.

nats-py binds to an existing durable consumer as it is and never updates it, so a changed ack
wait or delivery limit would silently not apply. ``ensure_consumer`` runs at every start, before
the subscriber binds: it creates the consumer, updates it in place when only editable settings
differ, and recreates it (resuming after its acknowledged floor) when the server refuses the
update. Several processes may run it at once; each step tolerates the others'.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import replace
from typing import TYPE_CHECKING

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, ReplayPolicy
from nats.js.errors import BadRequestError, NotFoundError, ServerError

from shared.events import STREAM_NAME, SUBJECT_VARIANT_REQUESTED

if TYPE_CHECKING:
    from nats.js import JetStreamContext
    from nats.js.api import ConsumerInfo

    from shared.settings import Settings

__all__ = ["DURABLE", "MAX_ACK_PENDING", "consumer_config", "ensure_consumer"]

DURABLE = "generator"
# Fleet-wide ceiling on requests handed out and not yet settled, delayed retries (nak with a
# delay) included. It is not how a process limits itself (each fetches only into a free slot),
# so it is set far above processes x concurrency: a low value would idle added processes.
MAX_ACK_PENDING = 1024
# Deliveries beyond the attempts: hand-backs at shutdown and requeues while the database is
# away also count. Past the limit the server gives up and announces it (MAX_DELIVERIES
# advisory), which the dead-letter service records: the backstop for a request that kills
# its process before the attempt is even counted.
_EXTRA_DELIVERIES = 10
# Pull requests the server keeps waiting at once: a few per process (the fetch loop has one).
_MAX_WAITING = 512
# Settings compared with the server's copy; the rest are either fixed or set by the server.
_COMPARED = (
    "description", "filter_subject", "ack_policy", "ack_wait", "max_deliver", "max_ack_pending",
    "max_waiting", "replay_policy",
)  # fmt: skip
# How the server refuses a consumer request (400, or 500 for "can not be updated").
_REFUSED = (BadRequestError, ServerError)
_log = logging.getLogger(__name__)


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


def differences(current: ConsumerConfig, wanted: ConsumerConfig) -> list[str]:
    """Names of the compared settings that differ."""
    changed = []
    for name in _COMPARED:
        have, want = getattr(current, name), getattr(wanted, name)
        if isinstance(have, float) and isinstance(want, float):
            if not math.isclose(have, want, rel_tol=1e-9):
                changed.append(name)
        elif have != want:
            changed.append(name)
    return changed


async def ensure_consumer(js: JetStreamContext, wanted: ConsumerConfig) -> str:
    """Make the server's consumer match ``wanted``; returns what it did
    (``created``, ``unchanged``, ``updated`` or ``recreated``)."""
    try:
        info = await js.consumer_info(STREAM_NAME, DURABLE)
    except NotFoundError:
        try:
            await js.add_consumer(STREAM_NAME, wanted)
        except _REFUSED:
            info = await js.consumer_info(STREAM_NAME, DURABLE)  # another process made it
        else:
            return "created"
    changed = differences(info.config, wanted)
    if not changed:
        return "unchanged"
    _log.info("consumer %s differs from the code in %s", DURABLE, ", ".join(changed))
    # Where it starts is fixed at creation: keep the server's, change the rest in place.
    in_place = replace(
        wanted,
        deliver_policy=info.config.deliver_policy,
        opt_start_seq=info.config.opt_start_seq,
        opt_start_time=info.config.opt_start_time,
    )
    try:
        await js.add_consumer(STREAM_NAME, in_place)
    except _REFUSED as error:
        _log.warning("consumer %s cannot be updated in place (%s): recreating it", DURABLE, error)
        await _recreate(js, info, wanted)
        return "recreated"
    return "updated"


async def _recreate(js: JetStreamContext, info: ConsumerInfo, wanted: ConsumerConfig) -> None:
    """Delete and create again, starting after the old acknowledged floor: nothing acked is
    delivered twice, and what was pending is delivered again (the pipeline is idempotent)."""
    floor = info.ack_floor.stream_seq if info.ack_floor else 0
    resumed = replace(
        wanted, deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=floor + 1
    )
    with contextlib.suppress(NotFoundError):  # another process is recreating it too
        await js.delete_consumer(STREAM_NAME, DURABLE)
    try:
        await js.add_consumer(STREAM_NAME, resumed)
    except _REFUSED:
        current = await js.consumer_info(STREAM_NAME, DURABLE)
        if differences(current.config, wanted):
            raise
