"""Spoken lines from eSpeak NG (the ``espeakng-loader`` wheel: the library and its voice data).

The speaking happens in a short-lived process (``espeak_worker``; why is said there), which
returns each line's audio and the time of every word and phoneme. ``espeakng-loader`` bundles
libespeak-ng and its data, so nothing is downloaded and no system package is needed.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import numpy.typing as npt

__all__ = ["Phone", "SpokenLine", "speak"]

_WORKER = Path(__file__).with_name("espeak_worker.py")
_TIMEOUT_SECONDS = 30.0  # A song's lines take well under a second; this only bounds a hang.
_WORD, _PHONEME = 1, 7
_SEED = 20_261_206  # Any fixed number: eSpeak's breath noise is part of the voice, not random.


@dataclass(frozen=True, slots=True)
class Phone:
    """One phoneme of a spoken line: IPA, its time in the line, and the word it belongs to."""

    label: str
    start: float
    end: float
    word: int  # Index into ``SpokenLine.words``; -1 for a pause between words.


@dataclass(frozen=True, slots=True)
class SpokenLine:
    """A line as eSpeak NG spoke it."""

    samples: npt.NDArray[np.float64]  # Mono, -1..1.
    rate: int
    words: tuple[tuple[int, int], ...]  # (first character, length) of each word in the text.
    phones: tuple[Phone, ...]


def _parse(raw: list[list[object]], samples: npt.NDArray[np.float64], rate: int) -> SpokenLine:
    words: list[tuple[int, int]] = []
    starts: list[tuple[str, float, int]] = []
    for kind, position, length, milliseconds, label in raw:
        if kind == _WORD:
            words.append((int(str(position)) - 1, int(str(length))))
        elif kind == _PHONEME:
            starts.append((str(label), int(str(milliseconds)) / 1000.0, len(words) - 1))
    duration = len(samples) / rate
    phones = []
    for index, (label, start, word) in enumerate(starts):
        end = starts[index + 1][1] if index + 1 < len(starts) else duration
        clean = label.replace("\u02c8", "").replace("\u02cc", "").strip()  # Stress marks.
        if end > start and clean and not clean.startswith("_"):
            phones.append(Phone(clean, start, min(end, duration), word))
    return SpokenLine(samples, rate, tuple(words), tuple(phones))


def speak(
    loader: ModuleType, voice: str, pitch: int, words_per_minute: int, lines: list[str]
) -> list[SpokenLine]:
    """Every line spoken by ``voice`` (an eSpeak NG voice name such as ``en-us+f2``)."""
    request = {
        "library": loader.get_library_path(),
        "data": loader.get_data_path(),
        "voice": voice,
        "pitch": pitch,
        "words_per_minute": words_per_minute,
        "lines": lines,
        "seed": _SEED,
    }
    # -I -S: no site-packages, no environment, no current directory; the worker needs none.
    done = subprocess.run(  # noqa: S603 - our own interpreter and file, no shell
        [sys.executable, "-I", "-S", str(_WORKER)],
        input=json.dumps(request).encode("utf-8"),
        capture_output=True,
        timeout=_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"eSpeak NG failed: {message or done.returncode}")
    data = done.stdout
    (rate,) = struct.unpack_from("<I", data, 0)
    offset = 4
    spoken = []
    for _ in lines:
        timing_length, pcm_length = struct.unpack_from("<II", data, offset)
        offset += 8
        raw = json.loads(data[offset : offset + timing_length])
        offset += timing_length
        pcm = np.frombuffer(data, dtype="<i2", count=pcm_length // 2, offset=offset)
        offset += pcm_length
        spoken.append(_parse(raw, pcm.astype(np.float64) / 32768.0, int(rate)))
    return spoken
