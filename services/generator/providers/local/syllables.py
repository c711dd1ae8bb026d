"""From a lyric line to what the voice says, and from eSpeak's phonemes to syllables.

The line is English, given to the English voice with only what it can read (Latin letters,
digits, punctuation): other scripts and emoji would be read out as "Chinese letter" or "woman
singer". The recipient's name is sung whatever its script: a word written in another script is
handed to eSpeak NG's voice for that language (SSML ``<voice xml:lang>``), so "王小明" is sung
as Wang Xiaoming and "ليلى" as Layla; emoji are left out. A long name is sung by its first word
(or first few characters, in scripts written without spaces), as people do.

Syllables are found around the vowels eSpeak reports: one consonant between two vowels starts
the second syllable; of two or more, the first closes the first syllable.
"""

from __future__ import annotations

import itertools
import unicodedata
from dataclasses import dataclass, replace
from html import escape

from .speech import SpokenLine

__all__ = ["Spoken", "readable_line", "syllables"]

_NAME_WORDS = 2
_NAME_CHARACTERS = 24
_UNSPACED_CHARACTERS = 4  # A Chinese, Japanese or Thai name is two to four characters.
_UNSPACED = frozenset({"cmn", "ja", "th", "my"})
# The first word of a character's Unicode name, for the scripts eSpeak NG has a voice for.
_LANGUAGES = {
    "ARABIC": "ar",
    "ARMENIAN": "hy",
    "BENGALI": "bn",
    "CJK": "cmn",
    "CYRILLIC": "ru",
    "DEVANAGARI": "hi",
    "ETHIOPIC": "am",
    "GEORGIAN": "ka",
    "GREEK": "el",
    "GUJARATI": "gu",
    "GURMUKHI": "pa",
    "HANGUL": "ko",
    "HEBREW": "he",
    "HIRAGANA": "ja",
    "KANNADA": "kn",
    "KATAKANA": "ja",
    "MALAYALAM": "ml",
    "MYANMAR": "my",
    "SINHALA": "si",
    "TAMIL": "ta",
    "TELUGU": "te",
    "THAI": "th",
}
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


def _language(character: str) -> str | None:
    """ "en" for what the English voice reads, an eSpeak language for another script, or None."""
    if character.isascii():
        return "en"
    script = unicodedata.name(character, "").split(" ", 1)[0]
    return "en" if script == "LATIN" else _LANGUAGES.get(script)


def _name_word(word: str, gender: str) -> str | None:
    """One word of the name as SSML: plain if English reads it, else in its language's voice."""
    languages = [_language(c) for c in word if unicodedata.category(c)[0] == "L"]
    language = next((found for found in languages if found), None)
    if language is None:
        return None
    # Letters of that script with their marks; anything else (emoji, symbols) goes.
    kept = "".join(c for c in word if _language(c) == language or unicodedata.category(c)[0] == "M")
    if language == "en":
        kept = _speakable(word)
        return escape(kept[:_NAME_CHARACTERS], quote=False) or None
    if language in _UNSPACED:
        kept = kept[:_UNSPACED_CHARACTERS]
    return f'<voice xml:lang="{language}" gender="{gender}">{escape(kept, quote=False)}</voice>'


def _sung_name(name: str, gender: str) -> str:
    words = [_name_word(word, gender) for word in unicodedata.normalize("NFC", name).split()]
    sung = [word for word in words if word]
    return " ".join(sung[:1] if len(sung) > _NAME_WORDS else sung)


def readable_line(line: str, name: str, gender: str) -> tuple[str, tuple[int, int] | None]:
    """The line as SSML for the voice, and the characters of the recipient's name in it."""
    at = line.find(name) if name else -1
    sung = _sung_name(name, gender) if at >= 0 else ""
    if not sung:
        return escape(_speakable(line), quote=False), None
    before = escape(_speakable(line[:at]), quote=False)
    after = escape(_speakable(line[at + len(name) :]), quote=False)
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
