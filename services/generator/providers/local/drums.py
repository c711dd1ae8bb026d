"""Drum and percussion sounds, synthesised once per song and then placed at each hit.

Kicks are a sine swept down in pitch; snares a short tone plus noise; cymbals and shakers
high-passed noise (differencing white noise tilts it towards the highs) with a few inharmonic
partials for the metallic ring. Noise comes from the song's seeded generator, so renders repeat.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from .plan import SAMPLE_RATE

__all__ = ["DrumKit", "make_kit", "place_hits"]

DrumKit = dict[str, npt.NDArray[np.float32]]


def _samples(seconds: float) -> int:
    return int(seconds * SAMPLE_RATE)


def _times(seconds: float) -> npt.NDArray[np.float32]:
    return np.arange(_samples(seconds), dtype=np.float32) / np.float32(SAMPLE_RATE)


def _decay(t: npt.NDArray[np.float32], seconds: float) -> npt.NDArray[np.float32]:
    envelope: npt.NDArray[np.float32] = np.exp(t * np.float32(-1.0 / seconds))
    return envelope


def _bright_noise(rng: np.random.Generator, count: int, passes: int) -> npt.NDArray[np.float32]:
    noise = rng.standard_normal(count + passes, dtype=np.float32)
    return np.diff(noise, n=passes) if passes else noise[:count]


def _metal(t: npt.NDArray[np.float32], base: float) -> npt.NDArray[np.float32]:
    # Inharmonic ratios, as measured on real cymbals, keep the ring from sounding like a chord.
    ratios = (1.0, 1.48, 1.93, 2.57, 3.11, 4.23)
    ring = np.zeros_like(t)
    for ratio in ratios:
        ring += np.sign(np.sin(t * np.float32(2.0 * math.pi * base * ratio)))
    return ring / np.float32(len(ratios))


def _normalised(sound: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    sound = sound.astype(np.float32)
    fade = min(32, len(sound))  # A few samples of fade-in so no hit starts with a step.
    sound[:fade] *= np.linspace(0.0, 1.0, fade, dtype=np.float32)
    sound[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return sound / np.float32(np.abs(sound).max())


def make_kit(rng: np.random.Generator) -> DrumKit:
    """Every drum sound a song may use, each peak-normalised."""
    t = _times(0.45)
    sweep = 48.0 + 110.0 * _decay(t, 0.035)
    kick_phase = np.cumsum(sweep) * np.float32(2.0 * math.pi / SAMPLE_RATE)
    kick = np.sin(kick_phase) * _decay(t, 0.16)
    kick += 0.25 * _bright_noise(rng, len(t), 1) * _decay(t, 0.003)

    t = _times(0.3)
    snare = 0.6 * np.sin(t * np.float32(2 * math.pi * 190)) * _decay(t, 0.045)
    snare += 0.25 * np.sin(t * np.float32(2 * math.pi * 330)) * _decay(t, 0.03)
    snare += 0.45 * _bright_noise(rng, len(t), 1) * _decay(t, 0.07)

    clap_env = np.maximum.reduce(
        [np.where(t >= start, _decay(np.abs(t - start), 0.006), 0) for start in (0, 0.011, 0.022)]
        + [np.where(t >= 0.03, _decay(np.abs(t - 0.03), 0.07), 0)]
    )
    clap = _bright_noise(rng, len(t), 1) * clap_env

    t = _times(0.35)
    hat_noise = _bright_noise(rng, len(t), 2) + 0.3 * _metal(t, 3200.0)
    t_ride = _times(1.2)
    ride = 0.6 * _metal(t_ride, 2400.0) * _decay(t_ride, 0.05)
    ride += (
        0.4 * (_bright_noise(rng, len(t_ride), 2) + _metal(t_ride, 3100.0)) * _decay(t_ride, 0.4)
    )
    t_crash = _times(1.8)
    crash = (_bright_noise(rng, len(t_crash), 1) + 0.3 * _metal(t_crash, 2900.0)) * _decay(
        t_crash, 0.55
    )

    t_short = _times(0.15)
    shaker_env = np.minimum(t_short / np.float32(0.015), 1.0) * _decay(t_short, 0.04)
    brush_noise = np.convolve(
        rng.standard_normal(len(t_short), dtype=np.float32), np.ones(6, np.float32) / 6, "same"
    )
    brush_env = np.minimum(t_short / np.float32(0.02), 1.0) * _decay(t_short, 0.06)

    return {
        "kick": _normalised(kick),
        "snare": _normalised(snare),
        "clap": _normalised(clap),
        "hat": _normalised((hat_noise * _decay(t, 0.018))[: _samples(0.08)]),
        "open_hat": _normalised(hat_noise * _decay(t, 0.12)),
        "pedal_hat": _normalised((hat_noise * _decay(t, 0.01))[: _samples(0.05)]),
        "ride": _normalised(ride),
        "crash": _normalised(crash),
        "shaker": _normalised(_bright_noise(rng, len(t_short), 2) * shaker_env),
        "brush": _normalised(brush_noise * brush_env),
    }


# Relative loudness of each drum in the kit, before the hit's own velocity.
_DRUM_GAIN = {
    "kick": 1.0,
    "snare": 0.75,
    "clap": 0.6,
    "hat": 0.9,
    "open_hat": 0.5,
    "pedal_hat": 0.4,
    "ride": 0.4,
    "crash": 0.45,
    "shaker": 0.6,
    "brush": 0.35,
}


def place_hits(
    bus: npt.NDArray[np.float32], kit: DrumKit, hits: Iterable[tuple[int, str, float]]
) -> None:
    """Add each (start sample, drum, velocity) hit of ``kit`` into ``bus`` in place."""
    for start, drum, velocity in hits:
        if start >= len(bus):
            continue
        sound = kit[drum]
        end = min(start + len(sound), len(bus))
        bus[start:end] += np.float32(velocity * _DRUM_GAIN[drum]) * sound[: end - start]
