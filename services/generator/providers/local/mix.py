"""From a plan to a stereo signal: render each part to a bus, add space, pan and master.

Parts are panned a little apart (chords left, pad right, cymbals right of centre) so the mix
breathes; a reverb gives the melody and chords a room; the master fades in and out, then a peak
limiter and a -1 dBFS peak normalisation keep every song loud enough and free of clipping.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from .drums import make_kit, place_hits
from .effects import limit_peaks, reverb
from .plan import SAMPLE_RATE, CompositionPlan, Note
from .synth import Bus, ScheduledNote, render_notes

__all__ = ["PEAK_DBFS", "Stereo", "render"]

Stereo = npt.NDArray[np.float32]  # Shape (samples, 2).

PEAK_DBFS = -1.0
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
    stereo *= np.float32(10.0 ** (PEAK_DBFS / 20.0) / _peak(stereo))
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


def render(plan: CompositionPlan) -> Stereo:
    """Synthesise the plan into float32 stereo samples at 44.1 kHz, peaks at -1 dBFS.

    Parts are rendered one at a time and mixed straight into the left, right and reverb-send
    buses, so memory holds four song-length buffers however many parts there are.
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
        # Constant-power pan law: a part keeps its loudness wherever it sits.
        left += np.float32(level * math.cos(pan * math.pi / 2)) * bus
        right += np.float32(level * math.sin(pan * math.pi / 2)) * bus
        if part in _REVERB_SENDS:
            send += np.float32(send_level * _REVERB_SENDS[part]) * bus
    wet_left, wet_right = reverb(send, decay_seconds)
    left += wet_left
    right += wet_right
    return _master(left, right, threshold)
