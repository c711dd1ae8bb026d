"""The drum part: the genre's groove each bar, lighter in the verse, with fills and crashes.

A fill (a run of snare sixteenths) in the bar before each chorus and a crash on its downbeat
mark the form the way a drummer would. Small random shifts in timing and loudness keep the
repeated bars from sounding like a loop.
"""

from __future__ import annotations

import numpy as np

from .accompaniment import SECTION_LEVEL
from .genres import GenreStyle
from .plan import Hit, Section

__all__ = ["write_drums"]

_TIME_JITTER = 0.006  # Standard deviation of timing drift, in beats.
_KEEPS_TIME = frozenset({"hat", "open_hat", "shaker", "ride", "pedal_hat"})


def _fill(start: float, beats: int) -> list[Hit]:
    """Snare sixteenths over the last beat of a bar, growing louder into the next section."""
    return [Hit(start + beats - 1 + i / 4, "snare", 0.55 + 0.12 * i) for i in range(4)]


def write_drums(
    rng: np.random.Generator, sections: tuple[Section, ...], style: GenreStyle
) -> tuple[Hit, ...]:
    """Every drum hit of the song; empty for genres without drums (the lullaby)."""
    if not style.drums:
        return ()
    bar_beats = style.beats_per_bar
    has_snare = any(step.drum == "snare" for step in style.drums)
    total_bars = sum(section.bars for section in sections)
    hits: list[Hit] = []
    for number, section in enumerate(sections):
        following = sections[number + 1].name if number + 1 < len(sections) else None
        for offset in range(section.bars):
            bar = section.start_bar + offset
            start = float(bar * bar_beats)
            if bar == total_bars - 1:
                # The song ends on one hit and lets the last chord ring.
                hits.append(Hit(start, "kick", 0.8))
                hits.append(Hit(start, "crash", 0.6))
                continue
            steps = style.drums
            if section.name == "intro":
                # Only the timekeeping voices, so the groove arrives with the verse.
                steps = tuple(step for step in steps if step.drum in _KEEPS_TIME)
            fill = has_snare and offset == section.bars - 1 and following == "chorus"
            if fill:
                steps = tuple(step for step in steps if step.position < bar_beats - 1)
                hits.extend(_fill(start, bar_beats))
            if offset == 0 and section.name == "chorus" and style.crash_on_chorus:
                hits.append(Hit(start, "crash", 0.7))
            level = SECTION_LEVEL[section.name]
            jitter = rng.normal(0.0, _TIME_JITTER, size=len(steps))
            loudness = rng.normal(1.0, 0.06, size=len(steps))
            for step, drift, gain in zip(steps, jitter, loudness, strict=True):
                position = max(step.position + float(drift), 0.0)
                velocity = float(np.clip(step.velocity * level * gain, 0.05, 1.0))
                hits.append(Hit(start + position, step.drum, velocity))
    return tuple(hits)
