"""From an order to a composition plan: key, tempo, form and progressions, then the parts.

Everything random is drawn from a generator seeded by the order id and variant number, so one
order and variant always give the same plan. The progressions of an order's variants are chosen
by stepping through the mood's table (five entries, one per possible variant) from an order-wide
offset, which guarantees the variants of one order use different chord progressions, not just a
transposition of one song.
"""

from __future__ import annotations

import itertools
import uuid

from .accompaniment import write_bass, write_comp, write_pad
from .genres import GENRES
from .melody import write_melody
from .moods import MOODS
from .percussion import write_drums
from .plan import CompositionPlan, Section, Voices
from .seed import order_number, variant_rng
from .theory import Key

__all__ = ["MAX_SECONDS", "MIN_SECONDS", "compose"]

MIN_SECONDS = 20.0
MAX_SECONDS = 45.0
_TAIL_SECONDS = 2.0  # The last chord's ring-out, under the fade.
_TARGET_SECONDS = (27.0, 36.0)
_OUTRO_BARS = 2
_SHAPES = (
    ("verse", "chorus"),
    ("verse", "chorus", "chorus"),
    ("verse", "chorus", "verse", "chorus"),
)
# Resolution into the final tonic: IV-I in major, VI-i in minor.
_CADENCE_DEGREE = {"ionian": 3, "aeolian": 5}


def _form(bar_seconds: float, target: float) -> tuple[tuple[str, int], ...]:
    """Section names and bar counts of the verse-chorus form nearest ``target`` seconds."""
    candidates: list[tuple[float, tuple[tuple[str, int], ...]]] = []
    for intro, verse, chorus, shape in itertools.product((1, 2), (4, 8), (4, 8), _SHAPES):
        body = tuple((name, verse if name == "verse" else chorus) for name in shape)
        sections = (("intro", intro), *body, ("outro", _OUTRO_BARS))
        seconds = sum(bars for _, bars in sections) * bar_seconds + _TAIL_SECONDS
        if MIN_SECONDS <= seconds <= MAX_SECONDS:
            candidates.append((abs(seconds - target), sections))
    if not candidates:
        # The genre tempo ranges are chosen so this cannot happen; fail loudly if edited badly.
        msg = f"no verse-chorus form fits {MIN_SECONDS}-{MAX_SECONDS} s at {bar_seconds:.2f} s/bar"
        raise ValueError(msg)
    # Stable order plus min() means ties resolve the same way every time.
    return min(candidates, key=lambda candidate: candidate[0])[1]


def _fill_bars(progression: tuple[int, ...], bars: int) -> tuple[int, ...]:
    return tuple(progression[bar % len(progression)] for bar in range(bars))


def compose(order_id: uuid.UUID, variant_number: int, genre: str, mood: str) -> CompositionPlan:
    """Compose one variant of an order's song in the given genre and mood."""
    if genre not in GENRES or mood not in MOODS:
        msg = f"no local style for genre {genre!r} and mood {mood!r}"
        raise ValueError(msg)
    style = GENRES[genre]
    feel = MOODS[mood]
    rng = variant_rng(order_id, variant_number, "music")
    tempo = round(float(rng.uniform(*style.tempo_range)) * feel.tempo_factor, 1)
    key_class = style.key_pitch_classes[int(rng.integers(len(style.key_pitch_classes)))]
    # Tonic between A3 and G#4, where a tune sits comfortably.
    key = Key(root=57 + (key_class - 57) % 12, mode=feel.mode)

    offset = order_number(order_id) + variant_number
    table = feel.progressions
    verse_progression = table[offset % len(table)]
    chorus_progression = table[(offset + 2) % len(table)]

    bar_seconds = style.beats_per_bar * 60.0 / tempo
    form = _form(bar_seconds, float(rng.uniform(*_TARGET_SECONDS)))
    sections: list[Section] = []
    bar = 0
    for name, bars in form:
        if name == "outro":
            chords: tuple[int, ...] = (_CADENCE_DEGREE[feel.mode], 0)
        elif name == "chorus":
            chords = _fill_bars(chorus_progression, bars)
        else:
            chords = _fill_bars(verse_progression, bars)
        sections.append(Section(name, bar, chords))
        bar += bars
    form_sections = tuple(sections)

    pad = style.pad or ("pad" if mood == "epic" else None)  # Epic songs always get strings.
    melody = write_melody(rng, form_sections, style, feel, key)
    return CompositionPlan(
        genre=genre,
        mood=mood,
        tempo_bpm=tempo,
        beats_per_bar=style.beats_per_bar,
        swing=style.swing,
        key=key,
        sections=form_sections,
        voices=Voices(lead=style.lead, comp=style.comp, bass=style.bass, pad=pad),
        melody=melody,
        comp=write_comp(form_sections, style, key),
        pad=write_pad(form_sections, style, key) if pad else (),
        bass=write_bass(rng, form_sections, style, key),
        drums=write_drums(rng, form_sections, style),
        tail_seconds=_TAIL_SECONDS,
        noise_seed=int(rng.integers(2**63)),
    )
