"""The band under the tune: chord part, pad and bass line, bar by bar from the progression.

Chords are voiced with smooth voice leading in the middle of the keyboard; the bass plays the
chord's root (with fifths, octaves and, in jazz, walking approach notes) an octave or two below.
Both follow the genre's bar patterns and get quieter in the intro and verse than in the chorus.
"""

from __future__ import annotations

import numpy as np

from .genres import BassStep, GenreStyle
from .plan import Note, Section
from .theory import Key, voice_chord

__all__ = ["SECTION_LEVEL", "write_bass", "write_comp", "write_pad"]

# Loudness of each part of the form: the song builds into the chorus.
SECTION_LEVEL: dict[str, float] = {"intro": 0.8, "verse": 0.88, "chorus": 1.0, "outro": 0.9}

_COMP_RANGE = (48, 67)  # Below the tune (which sits around 57-84), so the two stay clear.
_PAD_RANGE = (50, 70)
_POWER_RANGE = (40, 52)
_BASS_LOW = 36  # C2: the bass root is placed in the octave above.
_STRUM_SPREAD = 0.025  # Beats between strings of a strummed chord.


def _bars(sections: tuple[Section, ...]) -> list[tuple[str, int, int, bool]]:
    """(section name, bar index, degree, is the very last bar) for every bar of the song."""
    total = sum(section.bars for section in sections)
    return [
        (section.name, section.start_bar + offset, degree, section.start_bar + offset == total - 1)
        for section in sections
        for offset, degree in enumerate(section.chords)
    ]


def write_comp(sections: tuple[Section, ...], style: GenreStyle, key: Key) -> tuple[Note, ...]:
    """The chord instrument: block chords, strums, arpeggios or power chords per the genre."""
    notes: list[Note] = []
    previous: tuple[int, ...] | None = None
    bar_beats = style.beats_per_bar
    for name, bar, degree, last in _bars(sections):
        start = float(bar * bar_beats)
        level = SECTION_LEVEL[name]
        if style.comp_style == "power":
            root = key.pitch(degree)
            low = _POWER_RANGE[0] + (root - _POWER_RANGE[0]) % 12
            voicing: tuple[int, ...] = (low, low + 7, low + 12)
        else:
            voicing = voice_chord(degree, style.chord_size, key, previous, _COMP_RANGE)
            previous = voicing
        if last:
            # The final chord rings for the whole bar whatever the genre's pattern.
            notes.extend(Note(start, float(bar_beats), pitch, 0.6 * level) for pitch in voicing)
            continue
        for hit, (position, length) in enumerate(style.comp_hits):
            accent = 1.0 if position == 0 else 0.85
            velocity = 0.62 * accent * level
            if style.comp_style == "arpeggio":
                # Up and down the chord with the octave on top, one note per hit.
                ladder = (*voicing, voicing[0] + 12)
                order = [0, 1, 2, 3, 2, 1, 2, 3][hit % 8] % len(ladder)
                notes.append(Note(start + position, length, ladder[order], velocity))
                continue
            spread = _STRUM_SPREAD if style.comp_style == "strum" else 0.0
            notes.extend(
                Note(start + position + string * spread, length - string * spread, pitch, velocity)
                for string, pitch in enumerate(voicing)
            )
    return tuple(notes)


def write_pad(sections: tuple[Section, ...], style: GenreStyle, key: Key) -> tuple[Note, ...]:
    """Sustained chords, one per bar, that glue the arrangement together."""
    notes: list[Note] = []
    previous: tuple[int, ...] | None = None
    bar_beats = style.beats_per_bar
    for name, bar, degree, _ in _bars(sections):
        voicing = voice_chord(degree, 3, key, previous, _PAD_RANGE)
        previous = voicing
        velocity = 0.4 * SECTION_LEVEL[name]
        notes.extend(Note(float(bar * bar_beats), float(bar_beats), p, velocity) for p in voicing)
    return tuple(notes)


def _bass_pitch(
    step: BassStep,
    degree: int,
    next_degree: int,
    key: Key,
    rng: np.random.Generator,
) -> int:
    root = key.pitch(degree)
    low_root = _BASS_LOW + (root - _BASS_LOW) % 12

    def above_root(scale_step: int) -> int:
        pitch = key.pitch(degree + scale_step)
        return low_root + (pitch - low_root) % 12

    if step.role == "fifth":
        return above_root(4)
    if step.role == "third":
        return above_root(2)
    if step.role == "octave":
        return low_root + 12
    if step.role == "walk":
        return above_root(int(rng.choice([1, 2])))
    if step.role == "approach":
        # A semitone above or below the next bar's root leads the ear into the change.
        target = _BASS_LOW + (key.pitch(next_degree) - _BASS_LOW) % 12
        return target + int(rng.choice([-1, 1]))
    return low_root


def write_bass(
    rng: np.random.Generator,
    sections: tuple[Section, ...],
    style: GenreStyle,
    key: Key,
) -> tuple[Note, ...]:
    """The bass line: the genre's bar pattern on each chord's root, fifth and octave."""
    bars = _bars(sections)
    notes: list[Note] = []
    bar_beats = style.beats_per_bar
    for number, (name, bar, degree, last) in enumerate(bars):
        start = float(bar * bar_beats)
        level = SECTION_LEVEL[name]
        if last:
            pitch = _bass_pitch(style.bass_steps[0], degree, 0, key, rng)
            notes.append(Note(start, float(bar_beats), pitch, 0.8 * level))
            continue
        next_degree = bars[number + 1][2]
        for step in style.bass_steps:
            pitch = _bass_pitch(step, degree, next_degree, key, rng)
            velocity = (0.85 if step.position == 0 else 0.72) * level
            notes.append(Note(start + step.position, step.length, pitch, velocity))
    return tuple(notes)
