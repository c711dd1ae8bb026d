"""Vectorised note synthesis: wavetable oscillators and envelopes, written into a bus.

Each note is computed as whole numpy arrays (no per-sample Python). The oscillator phase is a
32-bit fixed-point accumulator: ``n * increment`` wraps modulo 2**32 by itself, is exact for any
note length and costs one multiply per sample; its top bits index the wavetable.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from .instruments import INSTRUMENTS, Instrument
from .plan import SAMPLE_RATE
from .theory import midi_to_hz

__all__ = ["Bus", "ScheduledNote", "render_notes"]

Bus = npt.NDArray[np.float32]

_TABLE_BITS = 13  # 8192-sample cycles: nearest-sample lookup error stays below -68 dB.
_TABLE_SHIFT = np.uint32(32 - _TABLE_BITS)
_PHASE_SCALE = 2.0**32 / SAMPLE_RATE
_MAX_NOTE_SECONDS = 12.0
# Shared ramps, sliced per note rather than rebuilt: sample counters and times in seconds.
_COUNTER = np.arange(int(_MAX_NOTE_SECONDS * SAMPLE_RATE), dtype=np.uint32)
_SECONDS = (_COUNTER / SAMPLE_RATE).astype(np.float32)
# Shared by every render, including concurrent ones in worker threads: make them read-only.
_COUNTER.flags.writeable = False
_SECONDS.flags.writeable = False


# (start sample, held samples, MIDI pitch, velocity)
ScheduledNote = tuple[int, int, int, float]


@functools.lru_cache(maxsize=64)
def _wavetable(harmonics: tuple[float, ...]) -> npt.NDArray[np.float32]:
    """One cycle of the given harmonic mix, peak-normalised."""
    phase = np.arange(1 << _TABLE_BITS, dtype=np.float64) * (2.0 * math.pi / (1 << _TABLE_BITS))
    cycle = np.zeros_like(phase)
    for number, amplitude in enumerate(harmonics, start=1):
        if amplitude:
            cycle += amplitude * np.sin(number * phase)
    table: npt.NDArray[np.float32] = (cycle / np.abs(cycle).max()).astype(np.float32)
    table.flags.writeable = False  # Cached and shared: nothing may change it.
    return table


def _phase(frequency: float, count: int, instrument: Instrument) -> npt.NDArray[np.uint32]:
    increment = round(frequency * _PHASE_SCALE)
    if not instrument.vibrato_depth or count <= instrument.vibrato_delay * SAMPLE_RATE:
        steady: npt.NDArray[np.uint32] = _COUNTER[:count] * np.uint32(increment)
        return steady
    seconds = _SECONDS[:count]
    # Vibrato fades in after the delay; integrate the wobbling increment into the phase.
    depth = np.clip((seconds - instrument.vibrato_delay) * 4.0, 0.0, 1.0) * instrument.vibrato_depth
    wobble = 1.0 + depth * np.sin((2.0 * math.pi * instrument.vibrato_rate) * seconds)
    increments = (wobble * increment).astype(np.uint32)
    phase: npt.NDArray[np.uint32] = np.cumsum(increments, dtype=np.uint32) - increments[0]
    return phase


def _tone(instrument: Instrument, frequency: float, count: int) -> npt.NDArray[np.float32]:
    index = _phase(frequency, count, instrument) >> _TABLE_SHIFT
    tone: npt.NDArray[np.float32] = _wavetable(instrument.bright)[index]
    if instrument.dull is not None:
        dull = _wavetable(instrument.dull)[index]
        fade = np.exp(_SECONDS[:count] * np.float32(-1.0 / instrument.brightness_decay))
        tone = dull + fade * (tone - dull)
    if instrument.detune_cents:
        sharp = frequency * 2.0 ** (instrument.detune_cents / 1200.0)
        sharp_index = _phase(sharp, count, instrument) >> _TABLE_SHIFT
        tone = 0.5 * (tone + _wavetable(instrument.bright)[sharp_index])
    return tone


def _envelope(instrument: Instrument, held: int, total: int) -> npt.NDArray[np.float32]:
    """Attack, decay to sustain while held, then a release ramp to silence after ``held``."""
    if instrument.decay is None:
        level = np.ones(total, dtype=np.float32)
    else:
        fall = np.exp(_SECONDS[:total] * np.float32(-1.0 / instrument.decay))
        level = instrument.sustain + (1.0 - instrument.sustain) * fall
    attack = min(max(int(instrument.attack * SAMPLE_RATE), 1), total)
    level[:attack] *= np.linspace(0.0, 1.0, attack, dtype=np.float32)
    release = total - held
    if release > 0:
        # Raised-cosine release from wherever the note was when let go: no click at either end.
        ramp = 0.5 + 0.5 * np.cos(np.linspace(0.0, math.pi, release, dtype=np.float32))
        level[held:] = level[held - 1] * ramp
    return level


def _note_sound(instrument: Instrument, pitch: int, held: int, total: int) -> Bus:
    sound = _tone(instrument, midi_to_hz(pitch), total) * _envelope(instrument, held, total)
    if instrument.drive:
        drive = np.float32(instrument.drive)
        sound = np.tanh(drive * sound) / np.tanh(drive)
    return sound


def render_notes(bus: Bus, notes: Iterable[ScheduledNote], instrument_name: str) -> None:
    """Synthesise ``notes`` on the named instrument and add them into ``bus`` in place.

    Songs repeat themselves (the same chord every few bars, the same bass note on every eighth),
    so each distinct (pitch, length) is synthesised once per call and reused at each velocity.
    """
    instrument = INSTRUMENTS[instrument_name]
    release = max(int(instrument.release * SAMPLE_RATE), 64)
    limit = len(_COUNTER)
    sounds: dict[tuple[int, int, int], Bus] = {}
    for start, written, pitch, velocity in notes:
        if start >= len(bus):
            continue
        # Very short notes still get a whole attack; everything is cut at the end of the bus.
        total = min(min(max(written, 64), limit - release) + release, len(bus) - start)
        held = min(max(written, 64), total)
        key = (pitch, held, total)
        if key not in sounds:
            sounds[key] = _note_sound(instrument, pitch, held, total)
        bus[start : start + total] += np.float32(velocity * instrument.gain) * sounds[key]
