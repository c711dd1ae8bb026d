"""``instant``: a tiny but valid WAV per variant, made in microseconds, for load tests and drills.

A quarter of a second of a soft tone (its pitch set by the variant number, so variants differ),
16-bit mono at 8 kHz: about 4 KB, playable by anything that plays WAV.
"""

from __future__ import annotations

import array
import functools
import io
import math
import sys
import wave

from .base import GeneratedSong, SongRequest

__all__ = ["InstantProvider", "tone_wav"]

_SAMPLE_RATE = 8_000
_DURATION_SECONDS = 0.25
# One pitch per variant number: the notes of an A major chord, rising.
_PITCHES_HZ = (440.0, 554.37, 659.25, 880.0, 1108.73)


@functools.cache
def tone_wav(frequency_hz: float, seconds: float = _DURATION_SECONDS) -> bytes:
    """A mono 16-bit WAV of a sine tone with short fades (no clicks)."""
    frames = round(_SAMPLE_RATE * seconds)
    fade = max(1, frames // 10)
    samples = array.array("h")
    for index in range(frames):
        envelope = min(1.0, index / fade, (frames - 1 - index) / fade)
        value = 0.3 * envelope * math.sin(2 * math.pi * frequency_hz * index / _SAMPLE_RATE)
        samples.append(round(value * 32767))
    if sys.byteorder == "big":
        samples.byteswap()  # WAV data is little-endian
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(_SAMPLE_RATE)
        wav.writeframes(samples.tobytes())
    return buffer.getvalue()


def _title(request: SongRequest) -> str:
    occasion = request.occasion.replace("_", " ")
    return f"A {occasion} song for {request.recipient_name} (take {request.variant_number})"


def _lyrics(request: SongRequest) -> str:
    lines = [
        f"This one's for {request.recipient_name},",
        f"a {request.mood} {request.genre} tune for your {request.occasion.replace('_', ' ')},",
    ]
    if request.story:
        lines.append(f"because {request.story.strip()}")
    lines.append("and every word of it is true.")
    return "\n".join(lines)


class InstantProvider:
    """A ``SongProvider`` that returns at once with a short tone and lyrics from the order."""

    async def generate(self, request: SongRequest) -> GeneratedSong:
        pitch = _PITCHES_HZ[(request.variant_number - 1) % len(_PITCHES_HZ)]
        return GeneratedSong(
            audio=tone_wav(pitch),
            extension="wav",
            content_type="audio/wav",
            duration_seconds=_DURATION_SECONDS,
            title=_title(request),
            lyrics=_lyrics(request),
        )
