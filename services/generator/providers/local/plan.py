"""The composition plan: every note of a song, decided before any sound is made.

Composing and rendering are separate steps so the plan can be inspected (tests compare the
progressions and melodies of variants, and check durations for every genre and mood) without
paying for synthesis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .theory import Key

__all__ = ["SAMPLE_RATE", "CompositionPlan", "Hit", "Note", "Section", "Voices"]

# CD rate: what the MP3 is encoded at and what every buffer in the renderer uses.
SAMPLE_RATE = 44_100


@dataclass(frozen=True, slots=True)
class Note:
    """One pitched note. Times are in beats from the start of the song."""

    start: float
    length: float
    pitch: int  # MIDI note number.
    velocity: float  # 0..1


@dataclass(frozen=True, slots=True)
class Hit:
    """One drum or percussion hit."""

    start: float
    drum: str
    velocity: float


@dataclass(frozen=True, slots=True)
class Section:
    """A stretch of the form (intro, verse, chorus, outro) with one chord degree per bar."""

    name: str
    start_bar: int
    chords: tuple[int, ...]

    @property
    def bars(self) -> int:
        """Length of the section in bars."""
        return len(self.chords)


@dataclass(frozen=True, slots=True)
class Voices:
    """The instrument playing each part; ``pad`` is None when the genre has no pad."""

    lead: str
    comp: str
    bass: str
    pad: str | None


@dataclass(frozen=True, slots=True)
class CompositionPlan:
    """A whole song as notes: form, harmony, melody, accompaniment and drums."""

    genre: str
    mood: str
    tempo_bpm: float
    beats_per_bar: int
    swing: float
    key: Key
    sections: tuple[Section, ...]
    voices: Voices
    melody: tuple[Note, ...]
    comp: tuple[Note, ...]
    pad: tuple[Note, ...]
    bass: tuple[Note, ...]
    drums: tuple[Hit, ...]
    tail_seconds: float  # Ring-out after the last bar, inside which the fade ends.
    noise_seed: int  # Seeds the drum noise, so percussion is as repeatable as the notes.

    @property
    def seconds_per_beat(self) -> float:
        """Length of one beat in seconds."""
        return 60.0 / self.tempo_bpm

    @property
    def total_bars(self) -> int:
        """Bars in the whole form."""
        return sum(section.bars for section in self.sections)

    @property
    def total_beats(self) -> int:
        """Beats in the whole form."""
        return self.total_bars * self.beats_per_bar

    @property
    def duration_seconds(self) -> float:
        """Length of the rendered audio, rounded down to whole samples at 44.1 kHz."""
        seconds = self.total_beats * self.seconds_per_beat + self.tail_seconds
        return math.floor(seconds * SAMPLE_RATE) / SAMPLE_RATE

    @property
    def chord_progression(self) -> tuple[int, ...]:
        """The chord degree of every bar, start to end."""
        return tuple(degree for section in self.sections for degree in section.chords)

    @property
    def melody_pitches(self) -> tuple[int, ...]:
        """The melody as a sequence of MIDI pitches, ignoring rhythm."""
        return tuple(note.pitch for note in self.melody)

    def beat_to_seconds(self, beat: float) -> float:
        """Time of a beat position, with swing applied to the off-beats.

        Swing moves the second eighth of each beat later (to ``swing`` of the beat) and squeezes
        what follows, so every note inside a beat keeps its order.
        """
        whole = math.floor(beat)
        fraction = beat - whole
        if fraction < 0.5:
            warped = fraction / 0.5 * self.swing
        else:
            warped = self.swing + (fraction - 0.5) / 0.5 * (1.0 - self.swing)
        return (whole + warped) * self.seconds_per_beat
