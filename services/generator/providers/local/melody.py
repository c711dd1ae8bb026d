"""The tune: short motifs repeated and varied over the chords, the way songs are written.

A section's melody is built from two-bar phrases. The first phrase sets a rhythm and a contour;
the second repeats the rhythm with part of the contour changed; the third repeats the first;
the last is new and comes to rest on a chord root. Notes that fall on a beat, or are held, are
pulled to the nearest tone of the chord sounding under them, so the tune always agrees with the
harmony; the notes between may pass through any scale tone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import numpy as np

from .genres import GenreStyle
from .moods import MoodStyle
from .plan import Note, Section
from .theory import scale_index_to_midi

__all__ = ["write_melody"]

_PHRASE_BARS = 2
_STEPS = np.arange(-3, 4)
_EPSILON = 1e-9

Rhythm: TypeAlias = list[tuple[float, float]]


def _weighted_index(rng: np.random.Generator, weights: list[float]) -> int:
    probabilities = np.asarray(weights, dtype=np.float64)
    return int(rng.choice(len(weights), p=probabilities / probabilities.sum()))


def _phrase_rhythm(rng: np.random.Generator, style: GenreStyle, beats: float) -> Rhythm:
    """(offset, length) of each note of one phrase; it ends on a held note."""
    end = beats - style.phrase_ending
    position = 0.5 if style.beats_per_bar == 4 and rng.random() < 0.3 else 0.0
    notes: Rhythm = []
    while position < end - _EPSILON:
        remaining = end - position
        fitting = [(cell, weight) for cell, weight in style.melody_cells if sum(cell) <= remaining]
        if not fitting:
            notes.append((position, remaining))
            break
        cell = fitting[_weighted_index(rng, [weight for _, weight in fitting])][0]
        for length in cell:
            notes.append((position, length))
            position += length
    notes.append((end, style.phrase_ending))
    return notes


def _contour(rng: np.random.Generator, mood: MoodStyle, count: int) -> list[int]:
    weights = np.asarray(mood.leap_weights, dtype=np.float64)
    return [int(step) for step in rng.choice(_STEPS, size=count, p=weights / weights.sum())]


def _nearest_chord_tone(index: int, degree: int, root_only: bool) -> int:
    """The scale index nearest ``index`` that belongs to the triad on ``degree``."""
    allowed = (0,) if root_only else (0, 2, 4)
    for distance in range(8):
        for candidate in (index - distance, index + distance):
            if (candidate - degree) % 7 in allowed:
                return candidate
    return index  # Unreachable: a chord tone is always within a fifth.


def _phrase_pitches(
    rhythm: Rhythm,
    steps: list[int],
    phrase_start: float,
    chord_at: Callable[[float], int],
    centre: int,
    cadence: bool,
) -> list[int]:
    """Scale indices for a phrase: follow the contour, land on chord tones where it matters."""
    low, high = centre - 5, centre + 5
    index = centre
    pitches: list[int] = []
    for number, ((offset, length), step) in enumerate(zip(rhythm, steps, strict=True)):
        candidate = index + step if number else centre
        # Drift back towards the middle of the range instead of wandering off it.
        if candidate > high or (candidate > centre + 3 and step > 0):
            candidate = index - abs(step)
        elif candidate < low or (candidate < centre - 3 and step < 0):
            candidate = index + abs(step)
        beat = phrase_start + offset
        on_beat = abs(beat - round(beat)) < _EPSILON
        last = number == len(rhythm) - 1
        if on_beat or length >= 1.0 or last:
            candidate = _nearest_chord_tone(candidate, chord_at(beat), root_only=cadence and last)
        pitches.append(candidate)
        index = candidate
    return pitches


def _section_melody(
    rng: np.random.Generator,
    section: Section,
    style: GenreStyle,
    mood: MoodStyle,
    centre: int,
) -> list[tuple[float, float, int]]:
    """(beat, length, scale index) for one section, starting at beat 0 of the section."""
    bar_beats = style.beats_per_bar
    phrase_beats = float(_PHRASE_BARS * bar_beats)

    def chord_at(beat: float) -> int:
        return section.chords[min(int(beat // bar_beats), section.bars - 1)]

    motif = _phrase_rhythm(rng, style, phrase_beats)
    motif_steps = _contour(rng, mood, len(motif))
    varied_steps = [
        int(step) if rng.random() < 0.3 else old
        for old, step in zip(motif_steps, _contour(rng, mood, len(motif)), strict=True)
    ]
    cadence = _phrase_rhythm(rng, style, phrase_beats)
    cadence_steps = _contour(rng, mood, len(cadence))
    phrase_count = section.bars // _PHRASE_BARS
    plans = [(motif, motif_steps), (motif, varied_steps), (motif, motif_steps)]
    plans = [*plans[: max(phrase_count - 1, 0)], (cadence, cadence_steps)]

    notes: list[tuple[float, float, int]] = []
    for number, (rhythm, steps) in enumerate(plans):
        start = number * phrase_beats
        pitches = _phrase_pitches(
            rhythm, steps, start, chord_at, centre, cadence=number == len(plans) - 1
        )
        notes.extend(
            (start + offset, length, pitch)
            for (offset, length), pitch in zip(rhythm, pitches, strict=True)
        )
    return notes


def write_melody(
    rng: np.random.Generator,
    sections: tuple[Section, ...],
    style: GenreStyle,
    mood: MoodStyle,
    key_root: int,
    mode: str,
) -> tuple[Note, ...]:
    """The lead line of the whole song.

    Repeated sections sing the same tune (a chorus you recognise the second time is the point of
    a chorus); the chorus sits higher than the verse; the intro is left to the band; the outro
    settles on the tonic.
    """
    bar_beats = style.beats_per_bar
    articulation = style.articulation * mood.articulation_factor
    written: dict[tuple[str, tuple[int, ...]], list[tuple[float, float, int]]] = {}
    notes: list[Note] = []
    for section in sections:
        section_start = section.start_bar * bar_beats
        if section.name == "intro":
            continue
        if section.name == "outro":
            lines = [
                (0.0, float(bar_beats), _nearest_chord_tone(2, section.chords[0], False)),
                (float(bar_beats), float(bar_beats), 0),
            ]
            lines = [(beat, length, index + style.melody_register) for beat, length, index in lines]
            held = 1.0
        else:
            key = (section.name, section.chords)
            if key not in written:
                centre = (4 if section.name == "chorus" else 2) + style.melody_register
                written[key] = _section_melody(rng, section, style, mood, centre)
            lines = written[key]
            held = articulation
        boost = 0.05 if section.name == "chorus" else 0.0
        for beat, length, index in lines:
            on_beat = abs(beat - round(beat)) < _EPSILON
            velocity = (0.85 if on_beat else 0.72) + boost + float(rng.normal(0.0, 0.03))
            notes.append(
                Note(
                    start=section_start + beat,
                    length=max(length * held, 0.2),
                    pitch=scale_index_to_midi(index, key_root, mode),
                    velocity=float(np.clip(velocity, 0.4, 1.0)),
                )
            )
    return tuple(notes)
