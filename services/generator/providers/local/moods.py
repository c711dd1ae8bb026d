"""What each mood means musically: major or minor, pace, progressions and melodic shape."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MOODS", "MoodStyle"]


@dataclass(frozen=True, slots=True)
class MoodStyle:
    """How one mood colours a song: mode, pace and the chord progressions it may use."""

    name: str
    mode: str  # ionian (major) or aeolian (natural minor).
    tempo_factor: float
    progressions: tuple[tuple[int, ...], ...]  # Scale degrees, 0-based, one chord per bar.
    leap_weights: tuple[float, ...]  # Weights of melodic steps -3..+3 in scale indices.
    articulation_factor: float


# Melodic step weights for -3..+3 scale steps: calm moods move by step, bold moods leap.
_STEPWISE = (0.3, 1.0, 3.0, 1.0, 3.0, 1.0, 0.3)
_LEAPING = (0.8, 1.2, 2.5, 0.8, 2.5, 1.2, 1.0)

MOODS: dict[str, MoodStyle] = {
    "joyful": MoodStyle(
        name="joyful",
        mode="ionian",
        tempo_factor=1.05,
        progressions=((0, 4, 5, 3), (0, 3, 4, 3), (0, 5, 3, 4), (3, 0, 4, 5), (0, 4, 3, 4)),
        leap_weights=_LEAPING,
        articulation_factor=0.95,
    ),
    "romantic": MoodStyle(
        name="romantic",
        mode="ionian",
        tempo_factor=0.92,
        progressions=((0, 5, 3, 4), (0, 2, 3, 4), (5, 3, 0, 4), (0, 3, 5, 4), (1, 4, 0, 5)),
        leap_weights=_STEPWISE,
        articulation_factor=1.0,
    ),
    "nostalgic": MoodStyle(
        name="nostalgic",
        mode="ionian",
        tempo_factor=0.95,
        progressions=((0, 2, 5, 3), (5, 3, 0, 4), (3, 4, 2, 5), (0, 5, 1, 4), (3, 0, 4, 5)),
        leap_weights=_STEPWISE,
        articulation_factor=1.0,
    ),
    "funny": MoodStyle(
        name="funny",
        mode="ionian",
        tempo_factor=1.08,
        progressions=((0, 3, 4, 0), (0, 5, 1, 4), (0, 0, 3, 4), (0, 3, 0, 4), (3, 4, 0, 5)),
        leap_weights=_LEAPING,
        articulation_factor=0.7,
    ),
    "heartfelt": MoodStyle(
        name="heartfelt",
        mode="ionian",
        tempo_factor=0.95,
        progressions=((0, 4, 5, 3), (3, 0, 4, 5), (0, 3, 0, 4), (5, 3, 0, 4), (0, 5, 3, 4)),
        leap_weights=_STEPWISE,
        articulation_factor=1.0,
    ),
    "epic": MoodStyle(
        name="epic",
        mode="aeolian",
        tempo_factor=1.04,
        progressions=((0, 5, 2, 6), (0, 6, 5, 6), (5, 6, 0, 0), (0, 3, 5, 6), (0, 5, 3, 6)),
        leap_weights=_LEAPING,
        articulation_factor=1.0,
    ),
}
