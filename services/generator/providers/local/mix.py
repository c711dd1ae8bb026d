"""From a plan to a stereo signal: render each part to a bus, add space, pan and master.

Parts are panned a little apart (chords left, pad right, cymbals right of centre) so the mix
breathes; a reverb gives the melody, chords and voice a room. When there is a vocal it sits in
the centre above the band: the band ducks under it (a gain that follows the voice's level) and
the lead instrument steps back to a quiet double of the tune. The master fades in and out, a
peak limiter gives the band its density, and the whole song is brought to one loudness
(``loudness``) with no sample clipped.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from .drums import make_kit, place_hits
from .effects import limit_peaks, reverb
from .loudness import CEILING_DBFS, normalise_loudness
from .plan import SAMPLE_RATE, CompositionPlan, Note
from .singer import VocalStem
from .synth import Bus, ScheduledNote, render_notes

__all__ = ["PEAK_DBFS", "Stereo", "duck_gain", "render"]

Stereo = npt.NDArray[np.float32]  # Shape (samples, 2).

PEAK_DBFS = CEILING_DBFS
_FADE_IN_SECONDS = 0.01
_FADE_OUT_SECONDS = 3.5
# Level of each part in the mix and its pan (0 is hard left, 1 hard right).
_PARTS: dict[str, tuple[float, float]] = {
    "lead": (0.55, 0.5),
    "comp": (0.34, 0.35),
    "pad": (0.22, 0.68),
    "bass": (0.4, 0.5),
    "drums": (0.62, 0.5),
    "cymbals": (0.8, 0.62),
}
# Per genre: reverb send level, reverb time (RT60, seconds) and limiter threshold. A lower
# threshold turns peaks down further, so the song sounds denser and louder; the lullaby keeps
# its dynamics and a long, soft room.
_SPACE: dict[str, tuple[float, float, float]] = {
    "pop": (0.3, 1.4, 0.5),
    "rock": (0.2, 1.2, 0.45),
    "country": (0.25, 1.2, 0.55),
    "acoustic": (0.3, 1.5, 0.6),
    "rnb": (0.35, 1.8, 0.5),
    "hiphop": (0.2, 1.2, 0.45),
    "jazz": (0.3, 1.6, 0.6),
    "lullaby": (0.5, 2.4, 0.8),
}
# How much of each part goes to the reverb, relative to the genre's send level.
_REVERB_SENDS: dict[str, float] = {"lead": 1.0, "comp": 1.0, "pad": 0.7}
_VOCAL_SEND = 0.8  # Relative to the genre's send level, like the other parts.
_LEAD_UNDER_VOICE = 0.45  # The lead instrument's level when it doubles a voice.
_VOCAL_OVER_BAND_DB = 4.0  # The voice's RMS over the band's, where it sings.
_DUCK_DEPTH = 0.3  # The band drops by up to 30% (about 3 dB) under the voice.
_DUCK_BLOCK = 512  # Samples per step of the ducking gain (about 12 ms).
_DUCK_SMOOTH = 9  # Blocks averaged: the gain moves over about 100 ms, so it never pumps.
_CYMBALS = frozenset({"hat", "open_hat", "pedal_hat", "ride", "crash", "shaker"})


def _schedule(plan: CompositionPlan, notes: tuple[Note, ...]) -> list[ScheduledNote]:
    scheduled: list[ScheduledNote] = []
    for note in notes:
        start = plan.beat_to_seconds(note.start)
        end = plan.beat_to_seconds(note.start + note.length)
        scheduled.append(
            (
                round(start * SAMPLE_RATE),
                round((end - start) * SAMPLE_RATE),
                note.pitch,
                note.velocity,
            )
        )
    return scheduled


def _peak(signal: Bus | Stereo) -> float:
    # max and -min instead of abs().max(): no full-size temporary array.
    return max(float(signal.max()), -float(signal.min()), 1e-9)


def _master(left: Bus, right: Bus, threshold: float) -> Stereo:
    stereo = np.stack([left, right], axis=1)
    fade_in = round(_FADE_IN_SECONDS * SAMPLE_RATE)
    stereo[:fade_in] *= np.linspace(0.0, 1.0, fade_in, dtype=np.float32)[:, None]
    fade_out = round(_FADE_OUT_SECONDS * SAMPLE_RATE)
    curve = 0.5 + 0.5 * np.cos(np.linspace(0.0, math.pi, fade_out, dtype=np.float32))
    stereo[-fade_out:] *= curve[:, None]
    stereo *= np.float32(1.0 / _peak(stereo))
    limit_peaks(stereo, threshold)
    stereo *= np.float32(1.0 / _peak(stereo))
    normalise_loudness(stereo)
    return stereo


def _render_part(plan: CompositionPlan, part: str, length: int) -> Bus | None:
    """One part of the arrangement on its own bus, or None if the song has no such part."""
    bus = np.zeros(length, dtype=np.float32)
    voices = plan.voices
    if part == "lead":
        render_notes(bus, _schedule(plan, plan.melody), voices.lead)
    elif part == "comp":
        render_notes(bus, _schedule(plan, plan.comp), voices.comp)
    elif part == "bass":
        render_notes(bus, _schedule(plan, plan.bass), voices.bass)
    elif part == "pad" and voices.pad is not None:
        render_notes(bus, _schedule(plan, plan.pad), voices.pad)
    elif part in {"drums", "cymbals"} and plan.drums:
        kit = make_kit(np.random.default_rng(plan.noise_seed))
        wanted = part == "cymbals"
        hits = [
            (round(plan.beat_to_seconds(hit.start) * SAMPLE_RATE), hit.drum, hit.velocity)
            for hit in plan.drums
            if (hit.drum in _CYMBALS) == wanted
        ]
        place_hits(bus, kit, hits)
    else:
        return None
    return bus


def duck_gain(vocal: Bus) -> Bus:
    """Per-sample gain for the band: 1 where the voice is silent, down to 1 - depth under it."""
    length = len(vocal)
    blocks = -(-length // _DUCK_BLOCK)
    padded = np.zeros(blocks * _DUCK_BLOCK, dtype=np.float32)
    padded[:length] = vocal
    level = np.sqrt(np.mean(np.square(padded.reshape(blocks, _DUCK_BLOCK)), axis=1))
    presence = np.minimum(level / max(float(level.max()) * 0.3, 1e-9), 1.0)
    kernel = np.full(_DUCK_SMOOTH, 1.0 / _DUCK_SMOOTH, dtype=np.float32)
    smooth = np.convolve(presence, kernel, mode="same").astype(np.float32)
    gain = np.float32(1.0) - np.float32(_DUCK_DEPTH) * smooth
    ramps: Bus = np.repeat(gain, _DUCK_BLOCK)[:length]
    # Blocks are short and the gain is smoothed over nine of them: steps of under 0.4 dB.
    return ramps


def _vocal_level(vocal: Bus, left: Bus, right: Bus) -> float:
    """The voice's gain so that where it sings it is a few dB above the band."""
    singing = np.abs(vocal) > 1e-4
    if not singing.any():
        return 0.0
    band = float(np.sqrt(np.mean((left[singing] ** 2 + right[singing] ** 2) / 2)))
    voice = float(np.sqrt(np.mean(vocal[singing] ** 2)))
    return band * math.pow(10.0, _VOCAL_OVER_BAND_DB / 20.0) / max(voice, 1e-9)


def render(plan: CompositionPlan, vocal: VocalStem | None = None) -> Stereo:
    """Synthesise the plan, and the vocal if there is one, into float32 stereo at 44.1 kHz.

    Parts are rendered one at a time and mixed straight into the left, right and reverb-send
    buses, so memory holds a few song-length buffers however many parts there are.
    """
    length = round(plan.duration_seconds * SAMPLE_RATE)
    send_level, decay_seconds, threshold = _SPACE[plan.genre]
    left = np.zeros(length, dtype=np.float32)
    right = np.zeros(length, dtype=np.float32)
    send = np.zeros(length, dtype=np.float32)
    for part, (level, pan) in _PARTS.items():
        bus = _render_part(plan, part, length)
        if bus is None:
            continue
        if part == "lead" and vocal is not None:
            level *= _LEAD_UNDER_VOICE  # noqa: PLW2901 - the part's level, for this song only
        # Constant-power pan law: a part keeps its loudness wherever it sits.
        left += np.float32(level * math.cos(pan * math.pi / 2)) * bus
        right += np.float32(level * math.sin(pan * math.pi / 2)) * bus
        if part in _REVERB_SENDS:
            send += np.float32(send_level * _REVERB_SENDS[part]) * bus
    if vocal is not None:
        voice = vocal.samples[:length]
        duck = duck_gain(voice)
        left *= duck
        right *= duck
        send *= duck
        voice = voice * np.float32(_vocal_level(voice, left, right))
        centre = np.float32(math.cos(math.pi / 4))  # Constant power, panned to the middle.
        left += centre * voice
        right += centre * voice
        send += np.float32(send_level * _VOCAL_SEND) * voice
    wet_left, wet_right = reverb(send, decay_seconds)
    left += wet_left
    right += wet_right
    return _master(left, right, threshold)
