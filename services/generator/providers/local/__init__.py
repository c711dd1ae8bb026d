"""The local song provider: real, listenable songs composed and rendered on this machine.

No network and no model: the song is composed procedurally from the order (genre, mood, name,
story), synthesised with numpy, sung (verse and chorus, the recipient's name on the chorus's
strong beats) by eSpeak NG and PSOLA when the ``vocals`` extra is installed (``singer``), and
encoded to MP3 with LAME. The same order and variant number always give the same file, byte for
byte.
"""

from __future__ import annotations

import asyncio
import os

from ..base import GeneratedSong, SongRequest
from .encode import ARTIST, CONTENT_TYPE, EXTENSION, encode_mp3
from .lyrics import write_lyrics
from .music import compose, render
from .seed import order_number
from .singer import VOICES, Voice, sing

__all__ = ["LocalProvider", "render_song", "voice_for"]


def voice_for(request: SongRequest) -> Voice:
    """The singer of one variant: stepping through the voices from an order-wide offset, so the
    variants of one order take turns between higher and lower voices and never share one."""
    return VOICES[(order_number(request.order_id) + request.variant_number) % len(VOICES)]


def render_song(request: SongRequest) -> GeneratedSong:
    """Compose, synthesise, sing and encode one variant of an order's song (CPU-bound)."""
    text = write_lyrics(request)
    plan = compose(request.order_id, request.variant_number, request.genre, request.mood)
    vocal = sing(plan, text, voice_for(request))
    audio = encode_mp3(render(plan, vocal), title=text.title, artist=ARTIST)
    return GeneratedSong(
        audio=audio,
        extension=EXTENSION,
        content_type=CONTENT_TYPE,
        duration_seconds=plan.duration_seconds,
        title=text.title,
        lyrics=text.lyrics,
    )


class LocalProvider:
    """A ``SongProvider`` that renders songs locally, off the event loop."""

    # Renders at once: the threads of the default executor that ``asyncio.to_thread`` runs them
    # on (its own sizing). More would wait there for a thread with their provider timeout
    # running, and hold their messages for nothing.
    max_concurrency = min(32, (os.cpu_count() or 1) + 4)

    async def generate(self, request: SongRequest) -> GeneratedSong:
        """Render the song in a worker thread so the event loop keeps serving other orders."""
        return await asyncio.to_thread(render_song, request)
