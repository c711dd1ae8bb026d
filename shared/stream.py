"""The JetStream streams: ``SERENADE`` (every event) and ``SERENADE_ADVISORIES`` (the server's
"message given up" advisories about it), created or brought up to date by whichever service
starts first; and every service's durable consumers, provisioned the one way ``ensure_consumer``
does. Safe to run from several processes at once.

The advisories are core NATS messages that nobody may be listening to when they fire; the second
stream keeps them until the dead-letter service reads them. Only the two advisories that mean "a
message was given up" are captured: every consumer advisory would include our own NAKs.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import replace
from typing import TYPE_CHECKING, Final

from nats.js.api import (
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError, ServerError

from shared.events import DUPLICATE_WINDOW_SECONDS, STREAM_NAME, STREAM_SUBJECTS

if TYPE_CHECKING:
    from nats.js import JetStreamContext
    from nats.js.api import ConsumerInfo

__all__ = [
    "ADVISORY_KINDS",
    "ADVISORY_PREFIX",
    "ADVISORY_STREAM",
    "ADVISORY_SUBJECTS",
    "advisory_stream_config",
    "consumer_differences",
    "ensure_consumer",
    "ensure_stream",
    "stream_config",
]

# A week of history: dead-letter advisories fetch originals by sequence number.
_RETENTION_SECONDS = 7 * 24 * 3600.0

ADVISORY_STREAM = "SERENADE_ADVISORIES"
ADVISORY_PREFIX = "$JS.EVENT.ADVISORY.CONSUMER"
ADVISORY_KINDS = ("MAX_DELIVERIES", "MSG_TERMINATED")
ADVISORY_SUBJECTS = tuple(f"{ADVISORY_PREFIX}.{kind}.{STREAM_NAME}.*" for kind in ADVISORY_KINDS)

# A consumer's settings compared with the server's copy; the rest are fixed at creation (where
# it starts) or the server's own.
_COMPARED: Final = (
    "description", "filter_subject", "ack_policy", "ack_wait", "max_deliver", "max_ack_pending",
    "max_waiting", "replay_policy",
)  # fmt: skip
# How the server refuses a consumer request (400, or 500 for "can not be updated").
_REFUSED: Final = (BadRequestError, ServerError)
_log = logging.getLogger(__name__)


def stream_config(*, replicas: int = 1) -> StreamConfig:
    """The stream as serenade needs it: every subject, on disk, with a duplicate window."""
    return StreamConfig(
        name=STREAM_NAME,
        subjects=list(STREAM_SUBJECTS),
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        duplicate_window=float(DUPLICATE_WINDOW_SECONDS),
        max_age=_RETENTION_SECONDS,
        num_replicas=replicas,
    )


def advisory_stream_config(*, replicas: int = 1) -> StreamConfig:
    """On disk, kept as long as the originals they point at."""
    return StreamConfig(
        name=ADVISORY_STREAM,
        description="JetStream advisories of messages given up by consumers of SERENADE",
        subjects=list(ADVISORY_SUBJECTS),
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        max_age=_RETENTION_SECONDS,
        duplicate_window=120.0,
        num_replicas=replicas,
    )


async def _ensure(js: JetStreamContext, wanted: StreamConfig) -> None:
    """Create the stream, or update it when the settings that matter differ."""
    assert wanted.name is not None
    try:
        info = await js.stream_info(wanted.name)
    except NotFoundError:
        try:
            await js.add_stream(wanted)
        except BadRequestError:
            # Another process created it between our look and our add: check it once more.
            info = await js.stream_info(wanted.name)
        else:
            return
    current = info.config
    if (
        sorted(current.subjects or []) != sorted(wanted.subjects or [])
        or current.duplicate_window != wanted.duplicate_window
        or current.max_age != wanted.max_age
    ):
        await js.update_stream(wanted)


async def ensure_stream(js: JetStreamContext, *, replicas: int = 1) -> None:
    """Both streams, as configured above."""
    await _ensure(js, stream_config(replicas=replicas))
    await _ensure(js, advisory_stream_config(replicas=replicas))


def consumer_differences(current: ConsumerConfig, wanted: ConsumerConfig) -> list[str]:
    """Names of the compared settings that differ. A setting the code leaves unset (None) is
    the server's to choose, and not compared."""
    changed = []
    for name in _COMPARED:
        have, want = getattr(current, name), getattr(wanted, name)
        if want is None:
            continue
        if isinstance(have, float) and isinstance(want, float):
            if not math.isclose(have, want, rel_tol=1e-9):
                changed.append(name)
        elif have != want:
            changed.append(name)
    return changed


async def ensure_consumer(js: JetStreamContext, stream: str, wanted: ConsumerConfig) -> str:
    """Make the server's durable ``wanted.durable_name`` on ``stream`` match ``wanted``; log
    and return what it did (``created``, ``unchanged``, ``updated`` or ``recreated``).

    nats-py binds to an existing durable as it is and never updates it, so a changed ack wait
    or delivery limit would silently not apply: every service runs this at start, before its
    subscribers bind. It creates the consumer, updates it in place when only editable settings
    differ, and recreates it (resuming after its acknowledged floor) when the server refuses
    the update. Several processes may run it at once; each step tolerates the others'.
    """
    durable = wanted.durable_name
    assert durable is not None
    try:
        info = await js.consumer_info(stream, durable)
    except NotFoundError:
        try:
            await js.add_consumer(stream, wanted)
        except _REFUSED:
            info = await js.consumer_info(stream, durable)  # another process made it
        else:
            _log.info("consumer %s on %s created", durable, stream)
            return "created"
    changed = consumer_differences(info.config, wanted)
    if not changed:
        _log.info("consumer %s on %s unchanged", durable, stream)
        return "unchanged"
    _log.info("consumer %s on %s differs from the code in %s", durable, stream, ", ".join(changed))
    # Where it starts is fixed at creation: keep the server's, change the rest in place.
    in_place = replace(
        wanted,
        deliver_policy=info.config.deliver_policy,
        opt_start_seq=info.config.opt_start_seq,
        opt_start_time=info.config.opt_start_time,
    )
    try:
        await js.add_consumer(stream, in_place)
    except _REFUSED as error:
        _log.warning(
            "consumer %s on %s cannot be updated in place (%s): recreating it",
            durable,
            stream,
            error,
        )
        await _recreate(js, stream, info, wanted)
        return "recreated"
    _log.info("consumer %s on %s updated", durable, stream)
    return "updated"


async def _recreate(
    js: JetStreamContext, stream: str, info: ConsumerInfo, wanted: ConsumerConfig
) -> None:
    """Delete and create again, starting after the old acknowledged floor: nothing acked is
    delivered twice, and what was pending is delivered again (every handler is idempotent)."""
    durable = wanted.durable_name
    assert durable is not None
    floor = info.ack_floor.stream_seq if info.ack_floor else 0
    resumed = replace(
        wanted, deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=floor + 1
    )
    with contextlib.suppress(NotFoundError):  # another process is recreating it too
        await js.delete_consumer(stream, durable)
    try:
        await js.add_consumer(stream, resumed)
    except _REFUSED:
        current = await js.consumer_info(stream, durable)
        if consumer_differences(current.config, wanted):
            raise
