"""The JetStream streams: ``SERENADE`` (every event) and ``SERENADE_ADVISORIES`` (the server's
"message given up" advisories about it), created or brought up to date by whichever service
starts first. Safe to run from several processes at once.

The advisories are core NATS messages that nobody may be listening to when they fire; the second
stream keeps them until the dead-letter service reads them. Only the two advisories that mean "a
message was given up" are captured: every consumer advisory would include our own NAKs.
"""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from shared.events import DUPLICATE_WINDOW_SECONDS, STREAM_NAME, STREAM_SUBJECTS

__all__ = [
    "ADVISORY_KINDS",
    "ADVISORY_PREFIX",
    "ADVISORY_STREAM",
    "ADVISORY_SUBJECTS",
    "advisory_stream_config",
    "ensure_stream",
    "stream_config",
]

# A week of history: dead-letter advisories fetch originals by sequence number.
_RETENTION_SECONDS = 7 * 24 * 3600.0

ADVISORY_STREAM = "SERENADE_ADVISORIES"
ADVISORY_PREFIX = "$JS.EVENT.ADVISORY.CONSUMER"
ADVISORY_KINDS = ("MAX_DELIVERIES", "MSG_TERMINATED")
ADVISORY_SUBJECTS = tuple(f"{ADVISORY_PREFIX}.{kind}.{STREAM_NAME}.*" for kind in ADVISORY_KINDS)


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
