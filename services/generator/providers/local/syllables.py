"""From a lyric line to what the voice says, and from eSpeak's phonemes to syllables.

The English voice is given only what it can read (Latin letters, digits, punctuation): other
scripts and emoji would be read out as "Chinese letter" or "woman singer". A long name is sung
by its first word, as people do. Syllables are found around the vowels eSpeak reports: one
consonant between two vowels starts the second syllable; of two or more, the first closes the
first syllable.
"""

from __future__ import annotations

import itertools
import unicodedata
from dataclasses import dataclass, replace

from .speech import SpokenLine

__all__ = ["Spoken", "readable_line", "syllables"]

_NAME_WORDS = 2
_NAME_CHARACTERS = 24
# IPA vowel letters (eSpeak reports phonemes in IPA); the look-alikes of a, i, y, w are meant.
_VOWELS = frozenset("aeiouy\u00e6\u0250\u0251\u0252\u0254\u0259\u0258\u025b\u025c\u025e\u026a")
_VOWELS |= frozenset("\u028a\u028c\u028f\u00f8\u0153\u0264\u026f\u0268\u0289\u025a\u025d")
_CLOSING = ("'", ",", ".", "!", "?")


@dataclass(frozen=True, slots=True)
class Spoken:
    """A syllable of the spoken line: its word, its span and its vowel's span, in seconds."""

    word: int  # Index into the line's words.
    start: float
    end: float
    vowel_start: float
    vowel_end: float
    name: bool  # Part of the recipient's name.


def _speakable(text: str) -> str:
    kept = []
    for character in unicodedata.normalize("NFC", text.replace("\u2019", "'")):
        latin = "LATIN" in unicodedata.name(character, "")
        kept.append(character if character.isascii() or latin else " ")
    return " ".join("".join(kept).split())


def _sung_name(name: str) -> str:
    spoken = _speakable(name)
    if len(spoken.split()) > _NAME_WORDS or len(spoken) > _NAME_CHARACTERS:
        return spoken.split()[0][:_NAME_CHARACTERS] if spoken else ""
    return spoken


def readable_line(line: str, name: str) -> tuple[str, tuple[int, int] | None]:
    """The line as the voice reads it, and the characters of the recipient's name in it."""
    at = line.find(name) if name else -1
    sung = _sung_name(name)
    if at < 0 or not sung:
        return _speakable(line), None
    before = _speakable(line[:at])
    after = _speakable(line[at + len(name) :])
    prefix = f"{before} " if before else ""
    joiner = "" if not after or after.startswith(_CLOSING) else " "
    return f"{prefix}{sung}{joiner}{after}", (len(prefix), len(prefix) + len(sung))


def _word_syllables(word: int, phones: list[tuple[str, float, float]], name: bool) -> list[Spoken]:
    vowels = [index for index, (label, _, _) in enumerate(phones) if set(label) & _VOWELS]
    if not vowels:
        return []
    cuts = [0]
    for previous, following in itertools.pairwise(vowels):
        between = following - previous - 1
        cuts.append(following - (1 if between == 1 else max(between - 1, 0)))
    cuts.append(len(phones))
    return [
        Spoken(
            word=word,
            start=phones[cuts[number]][1],
            end=phones[cuts[number + 1] - 1][2],
            vowel_start=phones[vowel][1],
            vowel_end=phones[vowel][2],
            name=name,
        )
        for number, vowel in enumerate(vowels)
    ]


def syllables(spoken: SpokenLine, name_span: tuple[int, int] | None) -> list[Spoken]:
    """The spoken line's syllables in order, from its word and phoneme timings."""
    found: list[Spoken] = []
    for number, (at, length) in enumerate(spoken.words):
        inside = [(p.label, p.start, p.end) for p in spoken.phones if p.word == number]
        is_name = name_span is not None and at < name_span[1] and name_span[0] < at + length
        word = _word_syllables(number, inside, is_name)
        if not word and inside and found:
            # A word without a vowel ("'s" read apart): the syllable before takes it.
            found[-1] = replace(found[-1], end=inside[-1][2])
        found.extend(word)
    return found
