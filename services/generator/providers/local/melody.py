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
from .theory import Key

__all__ = ["write_melody"]

_PHRASE_BARS = 2
_STEPS = np.arange(-3, 4)
_EPSILON = 1e-9
_PICKUP_CHANCE = 0.3  # How often a phrase starts on the off-beat after a short rest.
_VARIATION_CHANCE = 0.3  # Share of the contour the second phrase changes.
_RANGE = 5  # Scale steps either side of the section's centre the tune may use.

# (offset in the phrase, length) of each note, in beats.
Rhythm: TypeAlias = list[tuple[float, float]]
# (beat in the section, length, scale index) of each note.
Line: TypeAlias = list[tuple[float, float, int]]


def _weighted_index(rng: np.random.Generator, weights: list[float]) -> int:
    probabilities = np.asarray(weights, dtype=np.float64)
    return int(rng.choice(len(weights), p=probabilities / probabilities.sum()))


def _on_beat(beat: float) -> bool:
    return abs(beat - round(beat)) < _EPSILON


def _phrase_rhythm(rng: np.random.Generator, style: GenreStyle, beats: float) -> Rhythm:
    """(offset, length) of each note of one phrase; it ends on a held note."""
    end = beats - style.phrase_ending
    pickup = style.beats_per_bar % 2 == 0 and rng.random() < _PICKUP_CHANCE
    position = 0.5 if pickup else 0.0
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


def _nearest_chord_tone(index: int, degree: int, *, root_only: bool = False) -> int:
    """The scale index nearest ``index`` that belongs to the triad on ``degree``."""
    allowed = (0,) if root_only else (0, 2, 4)
    for distance in range(8):
        for candidate in (index - distance, index + distance):
            if (candidate - degree) % 7 in allowed:
                return candidate
    return index  # Unreachable: a chord tone is always within a fifth.


def _phrase_pitches(
    phrase: list[tuple[float, float, int]],
    phrase_start: float,
    chord_at: Callable[[float], int],
    centre: int,
    cadence: bool,
) -> list[int]:
    """Scale indices for a phrase of (offset, length, contour step) notes.

    The contour is followed, drifting back towards ``centre`` rather than wandering off the
    range; notes on a beat, held notes and the last note land on tones of the chord under them,
    and a cadence ends on the chord's root.
    """
    low, high = centre - _RANGE, centre + _RANGE
    index = centre
    pitches: list[int] = []
    for number, (offset, length, step) in enumerate(phrase):
        candidate = index + step if number else centre
        if candidate > high or (candidate > centre + 3 and step > 0):
            candidate = index - abs(step)
        elif candidate < low or (candidate < centre - 3 and step < 0):
            candidate = index + abs(step)
        beat = phrase_start + offset
        last = number == len(phrase) - 1
        if _on_beat(beat) or length >= 1.0 or last:
            candidate = _nearest_chord_tone(candidate, chord_at(beat), root_only=cadence and last)
        pitches.append(candidate)
        index = candidate
    return pitches


def _section_melody(
    rng: np.random.Generator, section: Section, style: GenreStyle, mood: MoodStyle, centre: int
) -> Line:
    """The tune of one section, timed from the section's first beat."""
    bar_beats = style.beats_per_bar
    phrase_beats = float(_PHRASE_BARS * bar_beats)

    def chord_at(beat: float) -> int:
        return section.chords[min(int(beat // bar_beats), section.bars - 1)]

    motif = _phrase_rhythm(rng, style, phrase_beats)
    motif_steps = _contour(rng, mood, len(motif))
    fresh_steps = _contour(rng, mood, len(motif))
    varied_steps = [
        fresh if rng.random() < _VARIATION_CHANCE else old
        for old, fresh in zip(motif_steps, fresh_steps, strict=True)
    ]
    ending = _phrase_rhythm(rng, style, phrase_beats)
    ending_steps = _contour(rng, mood, len(ending))
    statements = [(motif, motif_steps), (motif, varied_steps), (motif, motif_steps)]
    phrase_count = section.bars // _PHRASE_BARS
    phrases = [*statements[: max(phrase_count - 1, 0)], (ending, ending_steps)]

    line: Line = []
    for number, (rhythm, steps) in enumerate(phrases):
        start = number * phrase_beats
        phrase = [
            (offset, length, step) for (offset, length), step in zip(rhythm, steps, strict=True)
        ]
        cadence = number == len(phrases) - 1
        pitches = _phrase_pitches(phrase, start, chord_at, centre, cadence)
        line.extend(
            (start + offset, length, pitch)
            for (offset, length), pitch in zip(rhythm, pitches, strict=True)
        )
    return line


def _outro_line(section: Section, style: GenreStyle) -> Line:
    """A held chord tone over the cadence chord, then the tonic to close the song."""
    bar = float(style.beats_per_bar)
    register = style.melody_register
    approach = _nearest_chord_tone(2, section.chords[0]) + register
    return [(0.0, bar, approach), (bar, bar, register)]


def write_melody(
    rng: np.random.Generator,
    sections: tuple[Section, ...],
    style: GenreStyle,
    mood: MoodStyle,
    key: Key,
) -> tuple[Note, ...]:
    """The lead line of the whole song.

    Repeated sections sing the same tune (a chorus you recognise the second time is the point of
    a chorus); the chorus sits higher than the verse; the intro is left to the band; the outro
    settles on the tonic.
    """
    articulation = style.articulation * mood.articulation_factor
    written: dict[tuple[str, tuple[int, ...]], Line] = {}
    notes: list[Note] = []
    for section in sections:
        if section.name == "intro":
            continue
        if section.name == "outro":
            line, held = _outro_line(section, style), 1.0
        else:
            tune = (section.name, section.chords)
            if tune not in written:
                centre = (4 if section.name == "chorus" else 2) + style.melody_register
                written[tune] = _section_melody(rng, section, style, mood, centre)
            line, held = written[tune], articulation
        section_start = section.start_bar * style.beats_per_bar
        boost = 0.05 if section.name == "chorus" else 0.0
        for beat, length, index in line:
            accent = 0.85 if _on_beat(beat) else 0.72
            velocity = accent + boost + float(rng.normal(0.0, 0.03))
            notes.append(
                Note(
                    start=section_start + beat,
                    length=max(length * held, 0.2),
                    pitch=key.pitch(index),
                    velocity=float(np.clip(velocity, 0.4, 1.0)),
                )
            )
    return tuple(notes)
