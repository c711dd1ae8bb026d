"""The music of the local provider: compose a plan from an order, then render it to samples.

The work is split across small modules: ``compose`` (key, tempo, form, progressions), ``melody``,
``accompaniment`` and ``percussion`` (the parts), ``genres`` and ``moods`` (the style tables),
``theory``, ``instruments``, ``synth`` and ``drums`` (sound), ``mix`` (buses to stereo) and
``loudness`` (the master's level). The voice is apart, in the optional ``vocals`` extra:
``vocal_line`` (which syllable on which note), ``speech`` and ``espeak_worker`` (eSpeak NG),
``syllables`` and ``singer`` (PSOLA onto the tune).
"""

from __future__ import annotations

from .compose import MAX_SECONDS, MIN_SECONDS, compose
from .genres import GENRES
from .mix import PEAK_DBFS, Stereo, render
from .moods import MOODS
from .plan import SAMPLE_RATE, CompositionPlan, Hit, Note, Section, Voices

__all__ = [
    "GENRES",
    "MAX_SECONDS",
    "MIN_SECONDS",
    "MOODS",
    "PEAK_DBFS",
    "SAMPLE_RATE",
    "CompositionPlan",
    "Hit",
    "Note",
    "Section",
    "Stereo",
    "Voices",
    "compose",
    "render",
]
