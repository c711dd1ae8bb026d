"""The seam between the generator and whatever makes a song.

A provider takes one order and a variant number and returns a finished song: audio bytes, their
format, the duration, a title and the lyrics. It knows nothing of NATS, PostgreSQL or storage.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["GeneratedSong", "SongProvider", "SongRequest"]


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
