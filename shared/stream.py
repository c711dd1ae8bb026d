"""The one JetStream stream, ``SERENADE``: created or brought up to date by whichever service
starts first. Safe to run from several processes at once."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from shared.events import DUPLICATE_WINDOW_SECONDS, STREAM_NAME, STREAM_SUBJECTS

__all__ = ["ensure_stream", "stream_config"]


def stream_config(*, replicas: int = 1) -> StreamConfig:
    """The stream as serenade needs it: every subject, on disk, with a duplicate window."""
    return StreamConfig(
        name=STREAM_NAME,
        subjects=list(STREAM_SUBJECTS),
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        duplicate_window=float(DUPLICATE_WINDOW_SECONDS),
        # A week of history: dead-letter advisories fetch originals by sequence number.
        max_age=7 * 24 * 3600.0,
        num_replicas=replicas,
    )


async def ensure_stream(js: JetStreamContext, *, replicas: int = 1) -> None:
    """Create the stream, or update it when its settings differ from ``stream_config``."""
    wanted = stream_config(replicas=replicas)
    try:
        info = await js.stream_info(STREAM_NAME)
    except NotFoundError:
        try:
            await js.add_stream(wanted)
        except BadRequestError:
            # Another process created it between our look and our add: check it once more.
            info = await js.stream_info(STREAM_NAME)
        else:
            return
    current = info.config
    if (
        sorted(current.subjects or []) != sorted(wanted.subjects or [])
        or current.duplicate_window != wanted.duplicate_window
        or current.max_age != wanted.max_age
    ):
        await js.update_stream(wanted)
