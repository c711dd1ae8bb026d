"""What each genre means musically: tempo, metre, feel, instruments and patterns.

This table and the one in ``moods`` are the whole of the "taste" of the local provider. The
composer draws within them, so changing how a genre sounds means editing data here, not code.
Positions and lengths are in beats; a bar has ``beats_per_bar`` beats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

__all__ = ["GENRES", "BassStep", "DrumStep", "GenreStyle", "RhythmCell"]

# A rhythm cell is a run of note lengths in beats that the melody strings together.
RhythmCell: TypeAlias = tuple[float, ...]


@dataclass(frozen=True, slots=True)
class BassStep:
    """One bass note in a bar pattern. ``role`` is root, fifth, octave, third, walk or approach."""

    position: float
    length: float
    role: str


@dataclass(frozen=True, slots=True)
class DrumStep:
    """One drum hit in a bar pattern, before section dynamics are applied."""

    position: float
    drum: str
    velocity: float


@dataclass(frozen=True, slots=True)
class GenreStyle:
    """How one genre plays: feel, instruments, accompaniment and drum patterns."""

    name: str
    tempo_range: tuple[float, float]
    beats_per_bar: int
    swing: float  # Fraction of a beat where the off-beat eighth lands; 0.5 is straight.
    chord_size: int  # 3 for triads, 4 for the sevenths of jazz and R&B.
    lead: str
    comp: str
    bass: str
    pad: str | None
    comp_style: str  # block, strum, arpeggio or power.
    comp_hits: tuple[tuple[float, float], ...]  # (position, length) per bar; order for arpeggio.
    bass_steps: tuple[BassStep, ...]
    drums: tuple[DrumStep, ...]
    melody_cells: tuple[tuple[RhythmCell, float], ...]  # (cell, weight)
    phrase_ending: float  # Length of the held note that closes a melodic phrase.
    articulation: float  # Sounding fraction of each melody note's written length.
    melody_register: int  # Scale-index offset of the melody: +7 lifts it an octave.
    key_pitch_classes: tuple[int, ...]  # Keys the genre is usually played in (0 is C).
    crash_on_chorus: bool


def _eighths(drum: str, loud: float, soft: float, beats: int = 4) -> tuple[DrumStep, ...]:
    return tuple(DrumStep(i / 2, drum, loud if i % 2 == 0 else soft) for i in range(beats * 2))


def _sixteenths(drum: str, loud: float, soft: float) -> tuple[DrumStep, ...]:
    return tuple(DrumStep(i / 4, drum, loud if i % 2 == 0 else soft) for i in range(16))


_Q: RhythmCell = (1.0,)
_H: RhythmCell = (2.0,)
_DH: RhythmCell = (3.0,)
_EE: RhythmCell = (0.5, 0.5)
_DOT: RhythmCell = (0.75, 0.25)
_SYNC: RhythmCell = (0.5, 1.0, 0.5)
_LS: RhythmCell = (1.5, 0.5)
_SSE: RhythmCell = (0.25, 0.25, 0.5)
_ESS: RhythmCell = (0.5, 0.25, 0.25)

_POP_BASS = (
    BassStep(0.0, 1.5, "root"),
    BassStep(1.5, 0.5, "root"),
    BassStep(2.0, 1.5, "root"),
    BassStep(3.5, 0.5, "fifth"),
)

GENRES: dict[str, GenreStyle] = {
    "pop": GenreStyle(
        name="pop",
        tempo_range=(100.0, 122.0),
        beats_per_bar=4,
        swing=0.5,
        chord_size=3,
        lead="lead_square",
        comp="piano",
        bass="bass_synth",
        pad="pad",
        comp_style="block",
        comp_hits=((0.0, 1.5), (1.5, 1.0), (2.5, 1.5)),
        bass_steps=_POP_BASS,
        drums=(
            DrumStep(0.0, "kick", 1.0),
            DrumStep(2.0, "kick", 0.9),
            DrumStep(2.5, "kick", 0.6),
            DrumStep(1.0, "snare", 0.9),
            DrumStep(3.0, "snare", 0.9),
            *_eighths("hat", 0.45, 0.3),
        ),
        melody_cells=((_Q, 3.0), (_EE, 3.0), (_SYNC, 2.0), (_LS, 2.0), (_H, 1.0)),
        phrase_ending=1.5,
        articulation=0.85,
        melody_register=0,
        key_pitch_classes=(0, 2, 4, 5, 7, 9),
        crash_on_chorus=True,
    ),
    "rock": GenreStyle(
        name="rock",
        tempo_range=(128.0, 150.0),
        beats_per_bar=4,
        swing=0.5,
        chord_size=3,
        lead="lead_saw",
        comp="guitar_drive",
        bass="bass_finger",
        pad=None,
        comp_style="power",
        comp_hits=tuple((i / 2, 0.42) for i in range(8)),
        bass_steps=tuple(BassStep(i / 2, 0.45, "root") for i in range(8)),
        drums=(
            DrumStep(0.0, "kick", 1.0),
            DrumStep(1.5, "kick", 0.7),
            DrumStep(2.0, "kick", 1.0),
            DrumStep(2.5, "kick", 0.8),
            DrumStep(1.0, "snare", 1.0),
            DrumStep(3.0, "snare", 1.0),
            *_eighths("open_hat", 0.4, 0.32),
        ),
        melody_cells=((_EE, 4.0), (_Q, 3.0), (_LS, 2.0), (_H, 1.0)),
        phrase_ending=2.0,
        articulation=0.9,
        melody_register=0,
        key_pitch_classes=(4, 9, 2, 7),
        crash_on_chorus=True,
    ),
    "country": GenreStyle(
        name="country",
        tempo_range=(96.0, 118.0),
        beats_per_bar=4,
        swing=0.56,
        chord_size=3,
        lead="fiddle",
        comp="pluck",
        bass="bass_finger",
        pad=None,
        comp_style="strum",
        comp_hits=((1.0, 0.9), (2.5, 0.4), (3.0, 0.9)),
        bass_steps=(BassStep(0.0, 1.0, "root"), BassStep(2.0, 1.0, "fifth")),
        drums=(
            DrumStep(0.0, "kick", 0.9),
            DrumStep(2.0, "kick", 0.8),
            DrumStep(1.0, "snare", 0.7),
            DrumStep(3.0, "snare", 0.7),
            *_eighths("hat", 0.25, 0.4),
        ),
        melody_cells=((_Q, 3.0), (_EE, 3.0), (_LS, 2.0), (_H, 2.0)),
        phrase_ending=2.0,
        articulation=0.85,
        melody_register=0,
        key_pitch_classes=(7, 2, 9, 0, 4),
        crash_on_chorus=True,
    ),
    "acoustic": GenreStyle(
        name="acoustic",
        tempo_range=(88.0, 106.0),
        beats_per_bar=4,
        swing=0.5,
        chord_size=3,
        lead="lead_soft",
        comp="pluck",
        bass="bass_finger",
        pad=None,
        comp_style="arpeggio",
        comp_hits=tuple((i / 2, 0.9) for i in range(8)),
        bass_steps=(BassStep(0.0, 2.0, "root"), BassStep(2.0, 2.0, "fifth")),
        drums=(
            DrumStep(0.0, "kick", 0.55),
            DrumStep(2.5, "kick", 0.4),
            DrumStep(1.0, "clap", 0.35),
            DrumStep(3.0, "clap", 0.35),
            *_eighths("shaker", 0.35, 0.22),
        ),
        melody_cells=((_Q, 3.0), (_EE, 2.0), (_LS, 2.0), (_H, 2.0)),
        phrase_ending=2.0,
        articulation=0.95,
        melody_register=0,
        key_pitch_classes=(7, 2, 9, 0, 4),
        crash_on_chorus=False,
    ),
    "rnb": GenreStyle(
        name="rnb",
        tempo_range=(70.0, 88.0),
        beats_per_bar=4,
        swing=0.54,
        chord_size=4,
        lead="lead_soft",
        comp="rhodes",
        bass="bass_808",
        pad="pad",
        comp_style="block",
        comp_hits=((0.0, 2.0), (2.5, 1.5)),
        bass_steps=(
            BassStep(0.0, 1.5, "root"),
            BassStep(1.75, 0.25, "octave"),
            BassStep(2.5, 1.0, "root"),
            BassStep(3.5, 0.5, "fifth"),
        ),
        drums=(
            DrumStep(0.0, "kick", 1.0),
            DrumStep(0.75, "kick", 0.6),
            DrumStep(2.5, "kick", 0.85),
            DrumStep(1.0, "clap", 0.85),
            DrumStep(3.0, "clap", 0.85),
            *_sixteenths("hat", 0.3, 0.18),
        ),
        melody_cells=((_DOT, 2.0), (_SSE, 2.0), (_EE, 2.0), (_SYNC, 2.0), (_H, 1.0)),
        phrase_ending=2.0,
        articulation=0.9,
        melody_register=0,
        key_pitch_classes=(1, 3, 5, 8, 10),
        crash_on_chorus=False,
    ),
    "hiphop": GenreStyle(
        name="hiphop",
        tempo_range=(84.0, 96.0),
        beats_per_bar=4,
        swing=0.57,
        chord_size=4,
        lead="bell",
        comp="rhodes",
        bass="bass_808",
        pad="pad",
        comp_style="block",
        comp_hits=((0.0, 3.5),),
        bass_steps=(BassStep(0.0, 1.5, "root"), BassStep(2.5, 1.5, "root")),
        drums=(
            DrumStep(0.0, "kick", 1.0),
            DrumStep(1.75, "kick", 0.7),
            DrumStep(2.5, "kick", 0.9),
            DrumStep(1.0, "snare", 1.0),
            DrumStep(3.0, "snare", 1.0),
            *_eighths("hat", 0.4, 0.28),
        ),
        melody_cells=((_EE, 3.0), (_SSE, 2.0), (_ESS, 2.0), (_DOT, 2.0), (_Q, 1.0)),
        phrase_ending=1.0,
        articulation=0.8,
        melody_register=0,
        key_pitch_classes=(0, 1, 3, 5, 6, 8),
        crash_on_chorus=False,
    ),
    "jazz": GenreStyle(
        name="jazz",
        tempo_range=(108.0, 132.0),
        beats_per_bar=4,
        swing=0.64,
        chord_size=4,
        lead="sax",
        comp="rhodes",
        bass="bass_upright",
        pad=None,
        comp_style="block",
        comp_hits=((0.0, 1.0), (1.5, 0.5), (3.5, 0.5)),
        bass_steps=(
            BassStep(0.0, 0.95, "root"),
            BassStep(1.0, 0.95, "walk"),
            BassStep(2.0, 0.95, "fifth"),
            BassStep(3.0, 0.95, "approach"),
        ),
        drums=(
            DrumStep(0.0, "ride", 0.55),
            DrumStep(1.0, "ride", 0.7),
            DrumStep(1.5, "ride", 0.4),
            DrumStep(2.0, "ride", 0.55),
            DrumStep(3.0, "ride", 0.7),
            DrumStep(3.5, "ride", 0.4),
            DrumStep(1.0, "pedal_hat", 0.4),
            DrumStep(3.0, "pedal_hat", 0.4),
            DrumStep(0.0, "kick", 0.3),
            DrumStep(2.0, "kick", 0.25),
            DrumStep(2.5, "brush", 0.3),
        ),
        melody_cells=((_EE, 4.0), (_LS, 2.0), (_Q, 2.0), (_SYNC, 2.0)),
        phrase_ending=1.5,
        articulation=0.8,
        melody_register=0,
        key_pitch_classes=(5, 10, 3, 0, 7),
        crash_on_chorus=False,
    ),
    "lullaby": GenreStyle(
        name="lullaby",
        tempo_range=(60.0, 70.0),
        beats_per_bar=3,
        swing=0.5,
        chord_size=3,
        lead="music_box",
        comp="harp",
        bass="bass_soft",
        pad="pad_soft",
        comp_style="arpeggio",
        comp_hits=((0.0, 2.8), (1.0, 1.8), (2.0, 0.9)),
        bass_steps=(BassStep(0.0, 3.0, "root"),),
        drums=(),
        melody_cells=((_Q, 3.0), (_H, 3.0), (_DH, 1.0)),
        phrase_ending=3.0,
        articulation=1.0,
        melody_register=7,
        key_pitch_classes=(0, 5, 7, 2, 10),
        crash_on_chorus=False,
    ),
}
