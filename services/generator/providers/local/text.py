"""Unicode-safe text helpers for names and stories typed by customers.

Names and stories can hold any script, emoji built from several code points, combining accents,
right-to-left text and stray control characters. These helpers clean only what cannot be shown
(control characters, lone surrogates) and never cut inside a character cluster.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["clean_line", "shorten"]

_ZERO_WIDTH_JOINER = "\u200d"
_WHITESPACE = re.compile(r"\s+")
_ELLIPSIS = "\u2026"


def clean_line(text: str) -> str:
    """One line of displayable text: controls become spaces, lone surrogates U+FFFD.

    Whitespace runs collapse to one space. Everything else, including zero-width joiners inside
    emoji and combining marks, is kept exactly as typed.
    """
    characters = []
    for character in text:
        category = unicodedata.category(character)
        if category == "Cc":
            characters.append(" ")
        elif category == "Cs":
            characters.append("\ufffd")
        else:
            characters.append(character)
    return _WHITESPACE.sub(" ", "".join(characters)).strip()


def _is_regional_indicator(character: str) -> bool:
    return "\U0001f1e6" <= character <= "\U0001f1ff"


def _continues_cluster(text: str, index: int) -> bool:
    """Whether the character at ``index`` belongs to the cluster before it (so no cut there)."""
    character = text[index]
    previous = text[index - 1]
    if _is_regional_indicator(character):
        # Flags are pairs of regional indicators: an odd run before this one means mid-flag.
        run = 0
        while index - run - 1 >= 0 and _is_regional_indicator(text[index - run - 1]):
            run += 1
        return run % 2 == 1
    return (
        unicodedata.combining(character) != 0
        or unicodedata.category(character) in {"Mn", "Me", "Mc"}
        or _ZERO_WIDTH_JOINER in {character, previous}
        or "\ufe00" <= character <= "\ufe0f"  # Variation selectors (emoji vs text style).
        or "\U0001f3fb" <= character <= "\U0001f3ff"  # Skin-tone modifiers.
        or "\U000e0020" <= character <= "\U000e007f"  # Tag characters of flag sequences.
    )


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a word boundary where there is one.

    A cut text ends with an ellipsis. A single word longer than the limit (a long name in a
    script written without spaces) is cut between characters, never inside an emoji sequence
    or between a letter and its accent.
    """
    if len(text) <= limit:
        return text
    room = limit - 1  # Leave space for the ellipsis.
    cut = text.rfind(" ", 0, room + 1)
    if cut <= room // 2:
        # No useful word boundary: cut between character clusters instead.
        cut = room
        while cut > 1 and _continues_cluster(text, cut):
            cut -= 1
    return text[:cut].rstrip(" ,;:-") + _ELLIPSIS
