"""The instrument sounds: harmonic recipes and envelopes for each pitched voice.

Each instrument is a wavetable (a single cycle built from harmonic amplitudes) read at the note's
pitch, shaped by an attack-decay-sustain-release envelope. Plucked and struck sounds carry a
second, duller table and fade from bright to dull as the note decays, the way a string does.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["INSTRUMENTS", "Instrument"]


@dataclass(frozen=True, slots=True)
class Instrument:
    """A pitched voice. Times in seconds; harmonic amplitudes start at the fundamental."""

    bright: tuple[float, ...]
    dull: tuple[float, ...] | None = None  # Timbre after ``brightness_decay``; None if steady.
    brightness_decay: float = 0.2
    attack: float = 0.005
    decay: float | None = None  # Time constant of the fall to ``sustain``; None holds level.
    sustain: float = 1.0
    release: float = 0.08
    vibrato_depth: float = 0.0  # Fraction of the frequency.
    vibrato_rate: float = 5.5
    vibrato_delay: float = 0.18  # Singers and players start a note straight, then vibrate.
    detune_cents: float = 0.0  # A second oscillator this far sharp thickens pads.
    drive: float = 0.0  # tanh overdrive amount; 0 is clean.
    gain: float = 1.0


def _saw(count: int, tilt: float = 1.0) -> tuple[float, ...]:
    return tuple(1.0 / k**tilt for k in range(1, count + 1))


def _square(count: int) -> tuple[float, ...]:
    return tuple(1.0 / k if k % 2 else 0.0 for k in range(1, count + 1))


INSTRUMENTS: dict[str, Instrument] = {
    "piano": Instrument(
        bright=(1.0, 0.55, 0.32, 0.2, 0.12, 0.08, 0.05, 0.03),
        dull=(1.0, 0.22, 0.06),
        brightness_decay=0.35,
        attack=0.003,
        decay=0.7,
        sustain=0.12,
        release=0.12,
        gain=0.9,
    ),
    "rhodes": Instrument(
        bright=(1.0, 0.3, 0.08, 0.04, 0.0, 0.0, 0.12),
        dull=(1.0, 0.12),
        brightness_decay=0.12,
        attack=0.004,
        decay=1.2,
        sustain=0.3,
        release=0.15,
        gain=0.75,
    ),
    "pluck": Instrument(
        bright=(1.0, 0.65, 0.45, 0.35, 0.25, 0.18, 0.12, 0.09, 0.06, 0.04),
        dull=(1.0, 0.3, 0.1),
        brightness_decay=0.09,
        attack=0.002,
        decay=0.8,
        sustain=0.0,
        release=0.07,
        gain=0.85,
    ),
    "harp": Instrument(
        bright=(1.0, 0.4, 0.15, 0.06),
        dull=(1.0, 0.1),
        brightness_decay=0.15,
        attack=0.004,
        decay=1.4,
        sustain=0.0,
        release=0.3,
        gain=0.7,
    ),
    "guitar_drive": Instrument(
        bright=_saw(14),
        attack=0.004,
        decay=0.5,
        sustain=0.6,
        release=0.04,
        drive=3.0,
        gain=0.5,
    ),
    "pad": Instrument(
        bright=_saw(10, tilt=1.6),
        attack=0.3,
        release=0.5,
        detune_cents=8.0,
        gain=0.7,
    ),
    "pad_soft": Instrument(
        bright=(1.0, 0.25, 0.08),
        attack=0.6,
        release=0.8,
        detune_cents=5.0,
        gain=0.5,
    ),
    "lead_square": Instrument(
        bright=_square(15),
        dull=(1.0, 0.0, 0.2, 0.0, 0.06),
        brightness_decay=0.4,
        attack=0.012,
        decay=0.4,
        sustain=0.75,
        release=0.08,
        vibrato_depth=0.003,
        gain=0.65,
    ),
    "lead_saw": Instrument(
        bright=_saw(14),
        attack=0.01,
        decay=0.5,
        sustain=0.8,
        release=0.08,
        vibrato_depth=0.004,
        drive=1.5,
        gain=0.6,
    ),
    "lead_soft": Instrument(
        bright=(1.0, 0.3, 0.1, 0.04),
        attack=0.04,
        decay=0.8,
        sustain=0.8,
        release=0.15,
        vibrato_depth=0.004,
        vibrato_rate=5.0,
        gain=0.8,
    ),
    "fiddle": Instrument(
        bright=_saw(12, tilt=1.2),
        attack=0.05,
        sustain=1.0,
        release=0.1,
        vibrato_depth=0.005,
        vibrato_rate=6.0,
        vibrato_delay=0.12,
        gain=0.7,
    ),
    "sax": Instrument(
        bright=(1.0, 0.7, 0.5, 0.36, 0.22, 0.14, 0.08, 0.05),
        attack=0.03,
        decay=0.6,
        sustain=0.75,
        release=0.1,
        vibrato_depth=0.004,
        vibrato_rate=5.0,
        gain=0.9,
    ),
    "bell": Instrument(
        bright=(1.0, 0.0, 0.25, 0.35, 0.0, 0.1),
        dull=(1.0,),
        brightness_decay=0.1,
        attack=0.003,
        decay=0.6,
        sustain=0.1,
        release=0.2,
        gain=0.8,
    ),
    "music_box": Instrument(
        bright=(1.0, 0.0, 0.0, 0.35, 0.0, 0.0, 0.0, 0.1),
        dull=(1.0,),
        brightness_decay=0.08,
        attack=0.003,
        decay=0.9,
        sustain=0.0,
        release=0.35,
        gain=1.0,
    ),
    "bass_synth": Instrument(
        bright=_saw(8, tilt=1.3),
        dull=(1.0, 0.3, 0.1),
        brightness_decay=0.15,
        attack=0.005,
        decay=0.5,
        sustain=0.6,
        release=0.06,
    ),
    "bass_finger": Instrument(
        bright=(1.0, 0.55, 0.25, 0.12, 0.05),
        dull=(1.0, 0.2, 0.05),
        brightness_decay=0.12,
        attack=0.004,
        decay=0.9,
        sustain=0.4,
        release=0.06,
    ),
    "bass_upright": Instrument(
        bright=(1.0, 0.45, 0.2, 0.08),
        dull=(1.0, 0.15),
        brightness_decay=0.08,
        attack=0.006,
        decay=0.45,
        sustain=0.25,
        release=0.08,
    ),
    "bass_808": Instrument(
        bright=(1.0, 0.15, 0.05),
        attack=0.005,
        decay=1.2,
        sustain=0.45,
        release=0.12,
        drive=0.8,
    ),
    "bass_soft": Instrument(
        bright=(1.0, 0.12),
        attack=0.12,
        decay=2.0,
        sustain=0.6,
        release=0.6,
        gain=0.55,
    ),
}
