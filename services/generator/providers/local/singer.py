"""The singer: the lyric's lines spoken by eSpeak NG, then sung on the tune by PSOLA.

eSpeak NG comes from the ``espeakng-loader`` wheel (the library with its voices, see ``speech``);
Praat's pitch-synchronous overlap-add (PSOLA, through the ``praat-parselmouth`` wheel) moves
the speech to a new pitch contour and new durations while keeping its formants, so the words
stay words. Nothing is downloaded; no system package is used. PSOLA rather than a vocoder such
as WORLD: it only moves pitch periods, so it costs a fraction of the CPU (about 0.1 s for a
song's lines), and pyworld has no wheels to install from.

Each sung line is spoken whole, in a monotone (so coarticulation and stress stay natural and
the pitch analysis is easy), with the time of every word and phoneme. The phonemes
are grouped into syllables around their vowels, the syllables are laid on the phrase's notes
(``vocal_line``), and one PSOLA pass per line gives every syllable its notes' pitches, with a
gentle vibrato on held notes, and its notes' length: consonants keep their spoken length, the
vowel takes the rest, and the pauses between spoken words close up (the line is sung legato).

eSpeak NG and Praat are GPL-3.0, so they are the optional extra ``serenade[vocals]``: without
them :func:`sing` returns None and the song is the instrumental alone.
"""

from __future__ import annotations

import importlib
import math
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from .lyrics import SongText
from .plan import SAMPLE_RATE, CompositionPlan, Note
from .speech import SpokenLine, speak
from .syllables import Spoken, readable_line, syllables
from .theory import midi_to_hz
from .vocal_line import Phrase, fit_line, is_strong_beat, sung_phrases

__all__ = ["VOICES", "SungNote", "SungSyllable", "VocalStem", "Voice", "engine", "sing"]

_WORDS_PER_MINUTE = 160
# Praat's pitch search range around the voice's monotone: a narrow range is a short analysis
# window and few candidates, the larger part of what PSOLA costs.
_PITCH_RANGE = (0.7, 1.5)
_ANALYSIS_STEP = 0.02  # Seconds; the voice is monotone, so 20 ms frames find it as well as 10.
_GAP_FACTOR = 0.02  # Pauses between spoken words shrink to 2%: the line is sung legato.
_CONSONANT_SHARE = 0.35  # At most this share of a syllable's time goes to its consonants.
_VIBRATO_SEMITONES = 0.2  # Depth either way (20 cents): gentle.
_VIBRATO_HZ = 5.5
_VIBRATO_DELAY = 0.15  # Seconds into a note before the vibrato starts, then 0.2 s to full depth.
_PITCH_STEP = 0.02  # Seconds between the points of the sung pitch contour.
_PSOLA_SEED = 20_261_206
_EDGE_SECONDS = 0.004  # Fade at either end of a sung line: no click.
# Praat keeps state in globals: one song at a time, whatever thread asks.
_LOCK = threading.Lock()

Signal = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Voice:
    """One singer: an eSpeak NG language and voice, and where the tune sits for it."""

    name: str
    espeak: str  # eSpeak NG voice: language and variant.
    pitch: int  # eSpeak's speaking pitch, 0-100: near where the voice will sing.
    speaking_hz: float  # What that pitch comes out as (measured; eSpeak speaks it monotone).
    centre: int  # MIDI note the sung line's middle is moved nearest to, by whole octaves.


# Alternately higher and lower, so consecutive variants of an order never share a voice.
VOICES: tuple[Voice, ...] = (
    Voice("higher", "en+f2", 85, 253.0, 67),
    Voice("lower", "en-us+m3", 85, 135.0, 53),
    Voice("higher-bright", "en-us+f4", 85, 244.0, 69),
    Voice("lower-warm", "en+m1", 85, 123.0, 55),
)


@dataclass(frozen=True, slots=True)
class SungNote:
    """A pitch the voice holds, in seconds from the start of the song."""

    start: float
    end: float
    pitch: int  # MIDI note number.


@dataclass(frozen=True, slots=True)
class SungSyllable:
    """One syllable as sung: the word it belongs to, its notes and its time in the song."""

    word: str
    start: float
    end: float
    notes: tuple[SungNote, ...]
    name: bool  # Part of the recipient's name.
    strong: bool  # Starts on a strong beat.


@dataclass(frozen=True, slots=True)
class VocalStem:
    """The dry vocal (mono, 44.1 kHz, the song's length) and what it sings where."""

    samples: Signal
    syllables: tuple[SungSyllable, ...]
    voice: Voice


def engine() -> tuple[ModuleType, ModuleType] | None:
    """eSpeak NG's loader and Praat (``parselmouth``) if the ``vocals`` extra is installed.

    Looked up on every song, not at import: the provider works, instrumental only, without it.
    """
    try:
        return importlib.import_module("espeakng_loader"), importlib.import_module("parselmouth")
    except ImportError:
        return None


def _add_points(praat: ModuleType, tier: Any, points: list[tuple[float, float]]) -> None:
    """Add (time, value) points to a PitchTier or DurationTier in one Praat script."""
    script = "\n".join(f"Add point: {moment:.6f}, {value:.6f}" for moment, value in points)
    praat.praat.run(tier, script)


def _vibrato(seconds: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    depth = np.clip((seconds - _VIBRATO_DELAY) / 0.2, 0.0, 1.0) * _VIBRATO_SEMITONES
    wave: npt.NDArray[np.float64] = depth * np.sin(2.0 * math.pi * _VIBRATO_HZ * seconds)
    return wave


def _segments(
    spoken: list[Spoken], starts: list[float], end: float, duration: float
) -> list[tuple[float, float, float]]:
    """(from, to, factor) in spoken time: how much each stretch of the line is lengthened so
    syllable ``i`` starts ``starts[i]`` seconds into the sung line and the last ends at ``end``."""
    segments: list[tuple[float, float, float]] = [(0.0, spoken[0].start, _GAP_FACTOR)]
    for number, syllable in enumerate(spoken):
        following = spoken[number + 1].start if number + 1 < len(spoken) else duration
        gap = max(following - syllable.end, 0.0)
        target = starts[number + 1] if number + 1 < len(spoken) else end
        room = max(target - starts[number] - _GAP_FACTOR * gap, 0.03)
        consonants = (syllable.vowel_start - syllable.start) + (syllable.end - syllable.vowel_end)
        vowel = max(syllable.vowel_end - syllable.vowel_start, 1e-3)
        squeeze = min(1.0, _CONSONANT_SHARE * room / consonants) if consonants > 0 else 1.0
        stretch = max(room - squeeze * consonants, 0.01) / vowel
        segments += [
            (syllable.start, syllable.vowel_start, squeeze),
            (syllable.vowel_start, syllable.vowel_end, stretch),
            (syllable.vowel_end, syllable.end, squeeze),
            (syllable.end, syllable.end + gap, _GAP_FACTOR),
        ]
    return [(low, high, factor) for low, high, factor in segments if high - low > 1e-6]


@dataclass(frozen=True, slots=True)
class _Warp:
    """The time map of one line, spoken to sung: piecewise linear and increasing."""

    segments: list[tuple[float, float, float]]
    spoken: npt.NDArray[np.float64]
    sung: npt.NDArray[np.float64]
    lead_in: float  # Sung time of the first syllable's start: where the song's note falls.

    @classmethod
    def build(cls, segments: list[tuple[float, float, float]], first: float) -> _Warp:
        spoken = np.array([segments[0][0], *(high for _, high, _ in segments)])
        sung = np.concatenate([[0.0], np.cumsum([(h - lo) * f for lo, h, f in segments])])
        return cls(segments, spoken, sung, float(np.interp(first, spoken, sung)))

    def to_spoken(self, sung: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        result: npt.NDArray[np.float64] = np.interp(sung, self.sung, self.spoken)
        return result

    def duration_points(self) -> list[tuple[float, float]]:
        """DurationTier points: each factor held across its segment, stepping at the edges."""
        points: list[tuple[float, float]] = []
        for low, high, factor in self.segments:
            edge = min(0.0005, (high - low) / 4)
            points += [(low + edge, factor), (high - edge, factor)]
        return points


def _sung_syllables(
    *,
    spoken: list[Spoken],
    groups: list[list[Note]],
    text: str,
    words: tuple[tuple[int, int], ...],
    plan: CompositionPlan,
    shift: int,
) -> list[SungSyllable]:
    """Each syllable with its notes in seconds; a syllable lasts until the next one starts."""
    to_seconds = plan.beat_to_seconds
    last = groups[-1][-1]
    end = to_seconds(last.start + last.length)
    starts = [to_seconds(group[0].start) for group in groups] + [end]
    sung = []
    for number, (syllable, group) in enumerate(zip(spoken, groups, strict=True)):
        bounds = [to_seconds(note.start) for note in group] + [starts[number + 1]]
        notes = tuple(
            SungNote(bounds[index], bounds[index + 1], note.pitch + shift)
            for index, note in enumerate(group)
        )
        at, length = words[syllable.word]
        sung.append(
            SungSyllable(
                word=text[at : at + length],
                start=starts[number],
                end=starts[number + 1],
                notes=notes,
                name=syllable.name,
                strong=is_strong_beat(group[0].start, plan.beats_per_bar),
            )
        )
    return sung


def _pitch_points(sung: list[SungSyllable], warp: _Warp) -> list[tuple[float, float]]:
    """PitchTier points (spoken time, Hz): each note held, with vibrato once it has sounded."""
    origin = sung[0].start
    points: list[tuple[float, float]] = []
    for syllable in sung:
        for note in syllable.notes:
            held = np.arange(0.0, max(note.end - note.start, 1e-3), _PITCH_STEP)
            hertz = [midi_to_hz(note.pitch + bend) for bend in _vibrato(held).tolist()]
            moments = warp.to_spoken(held + (note.start - origin + warp.lead_in))
            points.extend(zip(moments.tolist(), hertz, strict=True))
    return points


def _resynthesise(
    praat: ModuleType,
    line: SpokenLine,
    warp: _Warp,
    points: list[tuple[float, float]],
    speaking_hz: float,
) -> tuple[npt.NDArray[np.float64], float]:
    """The line moved onto its pitches and durations by PSOLA, and its sampling rate."""
    call = praat.praat.call
    sound = praat.Sound(line.samples, sampling_frequency=line.rate)
    durations = call("Create DurationTier", "sung", 0.0, sound.duration)
    _add_points(praat, durations, warp.duration_points())
    contour = call("Create PitchTier", "sung", 0.0, sound.duration)
    _add_points(praat, contour, points)
    floor, ceiling = (speaking_hz * factor for factor in _PITCH_RANGE)
    manipulation = call(sound, "To Manipulation", _ANALYSIS_STEP, floor, ceiling)
    call([manipulation, contour], "Replace pitch tier")
    call([manipulation, durations], "Replace duration tier")
    # PSOLA lengthens unvoiced stretches with randomly spaced periods (no buzz): seeded, so the
    # same line comes out the same, then Praat's generator is handed back unpredictable.
    praat.praat.run(f"random_initializeWithSeedUnsafelyButPredictably ({_PSOLA_SEED})")
    result = call(manipulation, "Get resynthesis (overlap-add)")
    praat.praat.run("random_initializeSafelyAndUnpredictably ()")
    return np.asarray(result.values[0], dtype=np.float64), float(result.sampling_frequency)


def _to_song_rate(voice: npt.NDArray[np.float64], rate: float) -> Signal:
    """Linear interpolation up to 44.1 kHz (speech has little above eSpeak's 11 kHz band edge),
    with a few milliseconds' fade at either end so a line never clicks."""
    count = round(len(voice) * SAMPLE_RATE / rate)
    positions = np.arange(count) * (rate / SAMPLE_RATE)
    samples: Signal = np.interp(positions, np.arange(len(voice)), voice).astype(np.float32)
    edge = min(round(_EDGE_SECONDS * SAMPLE_RATE), len(samples) // 2)
    if edge:
        ramp = np.linspace(0.0, 1.0, edge, dtype=np.float32)
        samples[:edge] *= ramp
        samples[-edge:] *= ramp[::-1]
    return samples


def _sing_line(
    praat: ModuleType,
    line: SpokenLine,
    reading: tuple[Phrase, str, tuple[int, int] | None],
    *,
    plan: CompositionPlan,
    shift: int,
    speaking_hz: float,
) -> tuple[Signal, list[SungSyllable]] | None:
    """One line sung: its samples at 44.1 kHz from its first syllable on, and its syllables."""
    phrase, text, name_span = reading
    spoken = syllables(line, name_span)
    if not spoken:
        return None
    name_at = next((index for index, syllable in enumerate(spoken) if syllable.name), None)
    groups = fit_line(len(spoken), name_at, phrase.notes, plan.beats_per_bar)
    if len(groups) != len(spoken):
        return None
    sung = _sung_syllables(
        spoken=spoken, groups=groups, text=text, words=line.words, plan=plan, shift=shift
    )
    origin = sung[0].start
    starts = [syllable.start - origin for syllable in sung]
    length = sung[-1].end - origin
    warp = _Warp.build(
        _segments(spoken, starts, length, len(line.samples) / line.rate), spoken[0].start
    )
    points = _pitch_points(sung, warp)
    voice, rate = _resynthesise(praat, line, warp, points, speaking_hz)
    # Keep the sung line only: from its first syllable to the end of its last note.
    voice = voice[round(warp.lead_in * rate) : round((warp.lead_in + length) * rate)]
    return _to_song_rate(voice, rate), sung


def _octave_shift(phrases: list[Phrase], voice: Voice) -> int:
    pitches = sorted(note.pitch for phrase in phrases for note in phrase.notes)
    middle = pitches[len(pitches) // 2]
    return 12 * round((voice.centre - middle) / 12)


def sing(plan: CompositionPlan, text: SongText, voice: Voice) -> VocalStem | None:
    """The song's vocal stem sung by ``voice``, or None without the ``vocals`` extra."""
    modules = engine()
    if modules is None:
        return None
    loader, praat = modules
    phrases = sung_phrases(plan, text.stanzas, text.name)
    gender = "female" if "+f" in voice.espeak else "male"
    readable = [(phrase, *readable_line(phrase.line, text.name, gender)) for phrase in phrases]
    readable = [(phrase, line, span) for phrase, line, span in readable if line]
    if not readable:
        return None
    spoken = speak(
        loader, voice.espeak, voice.pitch, _WORDS_PER_MINUTE, [line for _, line, _ in readable]
    )
    shift = _octave_shift([phrase for phrase, _, _ in readable], voice)
    length = round(plan.duration_seconds * SAMPLE_RATE)
    stem = np.zeros(length, dtype=np.float32)
    syllables: list[SungSyllable] = []
    with _LOCK:
        for reading, said in zip(readable, spoken, strict=True):
            sung = _sing_line(
                praat, said, reading, plan=plan, shift=shift, speaking_hz=voice.speaking_hz
            )
            if sung is None:
                continue
            samples, placed = sung
            at = round(placed[0].start * SAMPLE_RATE)
            fitting = samples[: max(length - at, 0)]
            stem[at : at + len(fitting)] += fitting
            syllables.extend(placed)
    peak = max(float(stem.max()), -float(stem.min()))
    if peak > 0:
        stem *= np.float32(1.0 / peak)
    return VocalStem(samples=stem, syllables=tuple(syllables), voice=voice)
