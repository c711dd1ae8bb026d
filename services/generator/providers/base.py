"""The seam between the generator and whatever makes a song.

A provider takes one order and a variant number and returns a finished song: audio bytes, their
format, the duration, a title and the lyrics. It knows nothing of NATS, PostgreSQL or storage.

A provider that waits on a remote service can run hundreds of songs at once in one process; one
that renders here says how many it can take (``max_concurrency``), and the generator never
starts more at once than that (see ``concurrency_limit``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["GeneratedSong", "SongProvider", "SongRequest", "concurrency_limit"]


@dataclass(frozen=True, slots=True)
class SongRequest:
    """What a provider is asked to make: the order's fields and which variant of it."""

    order_id: uuid.UUID
    user_id: uuid.UUID
    recipient_name: str
    occasion: str
    genre: str
    mood: str
    story: str | None
    occasion_date: dt.date | None
    variant_number: int


@dataclass(frozen=True, slots=True)
class GeneratedSong:
    """A finished song. ``extension`` names the file type (``mp3``, ``wav``)."""

    audio: bytes
    extension: str
    content_type: str
    duration_seconds: float
    title: str
    lyrics: str


@runtime_checkable
class SongProvider(Protocol):
    """Makes one variant of one order's song. Raise any exception to fail the attempt."""

    async def generate(self, request: SongRequest) -> GeneratedSong: ...


def concurrency_limit(provider: object) -> int | None:
    """How many runs at once ``provider`` can take, when it says so (an optional
    ``max_concurrency`` attribute): a provider that computes here is bound by this machine's
    threads or cores, one that waits on a remote service is not (None)."""
    limit = getattr(provider, "max_concurrency", None)
    return limit if isinstance(limit, int) and limit >= 1 else None
