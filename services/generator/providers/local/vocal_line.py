"""Which lyric line is sung on which phrase of the tune, and which notes each syllable takes.

The tune is written in two-bar phrases (see ``melody``); each phrase of a verse or chorus sings
one line of its stanza. A line's syllables are laid on the phrase's notes one by one; a line
with fewer syllables than notes folds the spare notes into the syllable before them (a short
melisma, off-beat notes first), a line with more splits the longest notes in two (a repeated
note, as singers do). In the chorus the recipient's name starts on a strong beat: the notes
before it carry the words before it, however many that leaves for each.

This module is pure arithmetic on beats: the syllables themselves come from the speech
synthesiser (``singer``), which calls :func:`fit_line` once it knows how a line divides.
"""

from __future__ import annotations

from dataclasses import dataclass

from .plan import CompositionPlan, Note

__all__ = ["Phrase", "fit_line", "is_strong_beat", "sung_phrases"]

_PHRASE_BARS = 2
_EPSILON = 1e-6


@dataclass(frozen=True, slots=True)
class Phrase:
    """One lyric line and the notes of the phrase it is sung on (times in beats)."""

    section: str
    line: str
    notes: tuple[Note, ...]


def _stanza_lines(stanzas: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, list[str]]:
    verses = [lines for heading, lines in stanzas if heading.startswith("Verse")]
    chorus = next((lines for heading, lines in stanzas if heading == "Chorus"), ())
    return {
        "verse1": list(verses[0]) if verses else [],
        "verse2": list(verses[-1]) if verses else [],
        "chorus": list(chorus),
    }


def _chorus_lines(lines: list[str], name: str, count: int) -> list[str]:
    """``count`` chorus lines in order, starting at the first that names the recipient when not
    every line fits: the name is the line the chorus must not lose."""
    if count >= len(lines) or not lines:
        return lines[:count]
    first = next((index for index, line in enumerate(lines) if name in line), 0)
    return [lines[(first + offset) % len(lines)] for offset in range(count)]


def sung_phrases(
    plan: CompositionPlan, stanzas: tuple[tuple[str, tuple[str, ...]], ...], name: str
) -> list[Phrase]:
    """Every phrase that is sung, in order: verses sing their stanza, choruses the chorus.

    The intro and outro are left to the band. A four-bar section sings two lines, an eight-bar
    section four.
    """
    lines = _stanza_lines(stanzas)
    phrase_beats = _PHRASE_BARS * plan.beats_per_bar
    phrases: list[Phrase] = []
    verses_sung = 0
    for section in plan.sections:
        if section.name not in {"verse", "chorus"}:
            continue
        count = section.bars // _PHRASE_BARS
        if section.name == "verse":
            verses_sung += 1
            chosen = lines["verse1" if verses_sung == 1 else "verse2"][:count]
        else:
            chosen = _chorus_lines(lines["chorus"], name, count)
        start = section.start_bar * plan.beats_per_bar
        for number, line in enumerate(chosen):
            low = start + number * phrase_beats
            high = low + phrase_beats
            notes = tuple(note for note in plan.melody if low - _EPSILON <= note.start < high)
            if notes and line.strip():
                phrases.append(Phrase(section.name, line, notes))
    return phrases


def is_strong_beat(beat: float, beats_per_bar: int) -> bool:
    """Whether ``beat`` (from the song's start) is a bar's first beat, or its third in 4/4."""
    position = beat % beats_per_bar
    strong = (0.0, 2.0) if beats_per_bar == 4 else (0.0,)
    return any(abs(position - mark) < _EPSILON for mark in strong)


def _split(note: Note) -> tuple[Note, Note]:
    half = note.length / 2
    return (
        Note(note.start, half, note.pitch, note.velocity),
        Note(note.start + half, half, note.pitch, note.velocity * 0.95),
    )


def _fit(count: int, notes: list[Note]) -> list[list[Note]]:
    """``notes`` grouped into exactly ``count`` groups, one per syllable, in order."""
    if count <= 0 or not notes:
        return []
    groups = [[note] for note in notes]
    while len(groups) > count:
        # Fold the shortest off-beat group (else the shortest) into the one before it.
        index = min(
            range(1, len(groups)),
            key=lambda i: (
                abs(groups[i][0].start - round(groups[i][0].start)) < _EPSILON,
                sum(note.length for note in groups[i]),
                i,
            ),
        )
        groups[index - 1].extend(groups.pop(index))
    while len(groups) < count:
        # Split the longest group: a melisma comes apart, a single note is halved.
        index = max(range(len(groups)), key=lambda i: (sum(n.length for n in groups[i]), -i))
        group = groups[index]
        if len(group) > 1:
            middle = len(group) // 2
            groups[index : index + 1] = [group[:middle], group[middle:]]
        else:
            first, second = _split(group[0])
            groups[index : index + 1] = [[first], [second]]
    return groups


def fit_line(
    syllables: int, name_at: int | None, notes: tuple[Note, ...], beats_per_bar: int
) -> list[list[Note]]:
    """The notes of each of a line's ``syllables``; ``name_at`` is the name's first syllable.

    When the line holds the name, it starts on a strong-beat note: the one that leaves the words
    before and after it the fairest share of notes. Notes before the line's first syllable (a
    name that opens the line, after a pickup) are left unsung.
    """
    tune = list(notes)
    if name_at is None:
        return _fit(syllables, tune)
    before, after = name_at, syllables - name_at
    candidates = [
        index
        for index, note in enumerate(tune)
        if is_strong_beat(note.start, beats_per_bar) and (index > 0 or before == 0)
    ]
    if not candidates:
        return _fit(syllables, tune)
    start = min(
        candidates, key=lambda index: (abs(index - before) + abs(len(tune) - index - after), index)
    )
    return _fit(before, tune[:start]) + _fit(after, tune[start:])
