"""Title and lyrics from the order: the recipient's name, the occasion, the mood and the story.

Lines come from the tables in ``lyrics_templates``; the story contributes a short phrase and a
couple of its own words where it has some that fit. Choices are drawn from a generator seeded
by order and variant, and the title and chorus step through their tables from an order-wide
offset, so each variant of an order gets its own title and chorus.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from ..base import SongRequest
from .lyrics_templates import DATE_LINES, MEMORY_LINES, MOODS, OCCASIONS, OUTROS, WORD_LINES
from .seed import order_number, variant_rng
from .text import clean_line, shorten

__all__ = ["SongText", "story_memory", "story_words", "write_lyrics"]

_TITLE_NAME_LIMIT = 40
_TITLE_LIMIT = 80
_MEMORY_LIMIT = 60
_WORD_LIMIT = 20
# Clause boundaries in Latin, CJK and Arabic punctuation; a memory is one clause.
_CLAUSE_BREAK = re.compile(
    r"[.!?;:,\n\r\u2026\u3001\u3002\uff01\uff0c\uff1b\uff1f\u060c\u061b\u061f]+"
)
# Characters that would read as markup or template syntax in a lyric sheet.
_UNSAFE = re.compile(r"[{}\[\]<>\"\u201c\u201d\u00ab\u00bb]")
# Scripts written without spaces between words: a regex "word" there is a whole clause, which
# the memory line already quotes, so their words are not used as single words.
_UNSPACED = re.compile(r"[\u0e00-\u0eff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_IN_WORD = frozenset("'\u2019-")  # Apostrophes and hyphens inside words ("don't", "well-known").
# Words too common to say anything about the story, however often it uses them.
_STOPWORD_TEXT = """
    about above after again against all also always and any are because been before being
    below between both but can could did does doing down during each even ever every few for
    from further had has have having her here hers herself him himself his how into its itself
    just like made make many more most much must never not now off once only other ought our
    ours ourselves out over own really same she should some still such than that the their
    theirs them themselves then there these they this those through too under until very was
    were what when where which while who whom why will with would you your yours yourself
    went got get gets going one two three years year time day days things thing lot lots
    don't didn't can't couldn't won't wouldn't isn't wasn't it's that's there's we're they're
    you're i'm i've we've
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
# Spelled out rather than strftime("%B"), which follows the process locale: the lyrics must not
# change with the machine they are rendered on.
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True, slots=True)
class SongText:
    """The words of a song: a title, the lyric sheet with section headings, and the same lines
    by stanza (for the singer), with the name as it was put into them."""

    title: str
    lyrics: str
    stanzas: tuple[tuple[str, tuple[str, ...]], ...]
    name: str


def _possessive(name: str) -> str:
    return name + ("\u2019" if name[-1:] in {"s", "S"} else "\u2019s")


def story_memory(story: str | None, rng: np.random.Generator) -> str | None:
    """A short clause of the story, quoted as it was written, or None if none fits a line."""
    if not story:
        return None
    clauses = [clean_line(_UNSAFE.sub(" ", part)) for part in _CLAUSE_BREAK.split(story)]
    fitting = []
    for clause in clauses:
        words = clause.split()
        spaced = 3 <= len(words) <= 9 and len(clause) <= _MEMORY_LIMIT
        # Scripts written without spaces (Chinese, Japanese, Thai) come as one long "word".
        unspaced = len(words) == 1 and not clause.isascii() and 4 <= len(clause) <= 24
        if spaced or unspaced:
            fitting.append(clause)
    if not fitting:
        return None
    return fitting[int(rng.integers(len(fitting)))]


def _story_word(token: str) -> str | None:
    """``token`` without surrounding punctuation if it is a plain word, else None.

    Letters with their combining marks (accents, Arabic vowel signs, Indic vowel signs) are kept
    whole; tokens with digits, symbols or emoji inside are not words a lyric can hold.
    """
    start, end = 0, len(token)
    while start < end and unicodedata.category(token[start])[0] in "PSZ":
        start += 1
    while end > start and unicodedata.category(token[end - 1])[0] in "PSZ":
        end -= 1
    word = token[start:end]
    if not word or unicodedata.category(word[0])[0] != "L":
        return None
    if any(unicodedata.category(c)[0] not in "LM" and c not in _IN_WORD for c in word):
        return None
    return word


def story_words(story: str | None) -> list[str]:
    """The story's most telling words, best first, spelled as written.

    Frequent words rank first, then names (capitalised mid-sentence); English verb and adverb
    endings (-ed, -ing, -ly) rank last, since a lyric line wants things and places to hold.
    """
    if not story:
        return []
    scores: dict[str, float] = {}
    spelling: dict[str, str] = {}
    sentence_start = True
    for token in clean_line(story).split(" "):
        word = _story_word(token)
        after_stop = sentence_start
        sentence_start = token.rstrip("\"\u201d')\u2019").endswith((".", "!", "?"))
        if word is None or not 4 <= len(word) <= _WORD_LIMIT or _UNSPACED.search(word):
            continue
        key = word.casefold()
        if key in _STOPWORDS:
            continue
        named = word[0].isupper() and not after_stop
        verbish = word.isascii() and key.endswith(("ed", "ing", "ly"))
        bonus = (0.5 if named else 0.0) - (0.6 if verbish else 0.0)
        scores[key] = scores.get(key, 0.0) + 1.0 + bonus
        spelling.setdefault(key, word)
    # sorted() is stable and dicts keep insertion order: ties go to the word seen first.
    ranked = sorted(scores, key=lambda key: -scores[key])
    return [spelling[key] for key in ranked[:8]]


def _date_text(date: dt.date | None) -> str | None:
    if date is None:
        return None
    day = date.day
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"the {day}{suffix} of {_MONTHS[date.month - 1]}"


def _pick(rng: np.random.Generator, options: tuple[str, ...], count: int) -> list[str]:
    chosen = rng.choice(len(options), size=min(count, len(options)), replace=False)
    return [options[int(index)] for index in chosen]


def write_lyrics(request: SongRequest) -> SongText:
    """Title and lyrics for one variant of an order. Never empty; safe for any Unicode input."""
    rng = variant_rng(request.order_id, request.variant_number, "lyrics")
    offset = order_number(request.order_id) + request.variant_number
    occasion = OCCASIONS.get(request.occasion, OCCASIONS["other"])
    mood_lines = MOODS.get(request.mood, MOODS["heartfelt"])
    name = clean_line(request.recipient_name) or "you"

    memory = story_memory(request.story, rng)
    words = story_words(request.story)
    if len(words) > 2:
        first, second = _pick(rng, tuple(words[:4]), 2)
        words = [first, second]
    date = _date_text(request.occasion_date)
    fields = {
        "name": name,
        "names": _possessive(name),
        "moment": occasion.moment,
        "memory": memory or "",
        "word_a": words[0] if words else "",
        "word_b": words[1] if len(words) > 1 else "",
        "date": date or "",
    }

    colour = _pick(rng, mood_lines, 4)
    scenes = _pick(rng, occasion.lines, 3)
    story_line = _pick(rng, MEMORY_LINES, 1)[0] if memory else scenes[2]
    if len(words) == 2:
        detail_line = _pick(rng, WORD_LINES, 1)[0]
    elif date:
        detail_line = _pick(rng, DATE_LINES, 1)[0]
    else:
        detail_line = scenes[1]
    opener = occasion.openers[offset % len(occasion.openers)]
    chorus = occasion.choruses[offset % len(occasion.choruses)]
    outro = OUTROS[offset % len(OUTROS)]

    stanzas = [
        ("Verse 1", [opener, colour[0], story_line, colour[1]]),
        ("Chorus", list(chorus)),
        ("Verse 2", [scenes[0], colour[2], detail_line, colour[3]]),
        ("Chorus", list(chorus)),
        ("Outro", [outro]),
    ]
    filled = tuple(
        (heading, tuple(line.format(**fields) for line in lines)) for heading, lines in stanzas
    )
    sheet = "\n\n".join(f"[{heading}]\n" + "\n".join(lines) for heading, lines in filled)
    title_fields = {**fields, "name": shorten(name, _TITLE_NAME_LIMIT)}
    title_fields["names"] = _possessive(title_fields["name"])
    title_template = occasion.titles[offset % len(occasion.titles)]
    title = shorten(title_template.format(**title_fields), _TITLE_LIMIT)
    return SongText(title=title, lyrics=sheet, stanzas=filled, name=name)
