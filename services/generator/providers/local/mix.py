"""From a plan to a stereo signal: render each part to a bus, add space, pan and master.

Parts are panned a little apart (chords left, pad right, cymbals right of centre) so the mix
breathes; a cheap reverb (parallel feedback combs, computed a delay-length block at a time)
gives the melody and chords a room; the master fades in and out, then a soft limiter and a
-1 dBFS peak normalisation keep every song loud enough and free of clipping.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from .drums import make_kit, place_hits
from .plan import SAMPLE_RATE, CompositionPlan, Note
from .synth import Bus, ScheduledNote, render_notes

__all__ = ["PEAK_DBFS", "Stereo", "render"]

Stereo = npt.NDArray[np.float32]  # Shape (samples, 2).

PEAK_DBFS = -1.0
_FADE_IN_SECONDS = 0.01
_FADE_OUT_SECONDS = 3.5
_LIMITER_DRIVE = 2.0
# Level of each part in the mix and its pan (0 is hard left, 1 hard right).
_PARTS: dict[str, tuple[float, float]] = {
    "lead": (0.55, 0.5),
    "comp": (0.34, 0.35),
    "pad": (0.22, 0.68),
    "bass": (0.5, 0.5),
    "drums": (0.62, 0.5),
    "cymbals": (0.62, 0.62),
}
_REVERB_SEND: dict[str, float] = {
    "pop": 0.22,
    "rock": 0.14,
    "country": 0.18,
    "acoustic": 0.25,
    "rnb": 0.25,
    "hiphop": 0.15,
    "jazz": 0.25,
    "lullaby": 0.4,
}
_CYMBALS = frozenset({"hat", "open_hat", "pedal_hat", "ride", "crash", "shaker"})
# Comb delays in seconds: mutually prime-ish lengths so their echoes never line up.
_COMBS_LEFT = (0.0297, 0.0371)
_COMBS_RIGHT = (0.0411, 0.0437)
_COMB_FEEDBACK = 0.78


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


def _comb(signal: Bus, delay_seconds: float) -> Bus:
    """Feedback comb ``y[n] = x[n] + g*y[n-d]``, evaluated ``d`` samples at a time.

    Each block only needs the block before it, which is already final, so the recursion runs
    as a few hundred vector additions instead of a loop over every sample.
    """
    delay = round(delay_seconds * SAMPLE_RATE)
    out = signal.copy()
    feedback = np.float32(_COMB_FEEDBACK)
    for start in range(delay, len(out), delay):
        end = min(start + delay, len(out))
        out[start:end] += feedback * out[start - delay : end - delay]
    return out


def _reverb(send: Bus) -> tuple[Bus, Bus]:
    """A small stereo room: two combs per side, softened by a short moving average."""
    smooth = np.ones(4, dtype=np.float32) / np.float32(4.0)
    sides = []
    for delays in (_COMBS_LEFT, _COMBS_RIGHT):
        wet = sum((_comb(send, delay) for delay in delays), np.zeros_like(send))
        sides.append(np.convolve(wet, smooth, "same").astype(np.float32) * np.float32(0.12))
    return sides[0], sides[1]


def _master(left: Bus, right: Bus) -> Stereo:
    stereo = np.stack([left, right], axis=1)
    fade_in = round(_FADE_IN_SECONDS * SAMPLE_RATE)
    stereo[:fade_in] *= np.linspace(0.0, 1.0, fade_in, dtype=np.float32)[:, None]
    fade_out = round(_FADE_OUT_SECONDS * SAMPLE_RATE)
    curve = 0.5 + 0.5 * np.cos(np.linspace(0.0, math.pi, fade_out, dtype=np.float32))
    stereo[-fade_out:] *= curve[:, None]
    stereo /= np.float32(max(float(np.abs(stereo).max()), 1e-9))
    # tanh rounds off the few highest peaks (drum hits) so the body of the song can be louder.
    drive = np.float32(_LIMITER_DRIVE)
    np.tanh(stereo * drive, out=stereo)
    stereo *= np.float32(10.0 ** (PEAK_DBFS / 20.0) / math.tanh(_LIMITER_DRIVE))
    return stereo


def render(plan: CompositionPlan) -> Stereo:
    """Synthesise the plan into float32 stereo samples at 44.1 kHz, peaks at -1 dBFS."""
    length = round(plan.duration_seconds * SAMPLE_RATE)
    buses = {name: np.zeros(length, dtype=np.float32) for name in _PARTS}
    render_notes(buses["lead"], _schedule(plan, plan.melody), plan.voices.lead)
    render_notes(buses["comp"], _schedule(plan, plan.comp), plan.voices.comp)
    render_notes(buses["bass"], _schedule(plan, plan.bass), plan.voices.bass)
    if plan.voices.pad is not None:
        render_notes(buses["pad"], _schedule(plan, plan.pad), plan.voices.pad)
    if plan.drums:
        kit = make_kit(np.random.default_rng(plan.noise_seed))
        for bus_name, wanted in (("drums", False), ("cymbals", True)):
            hits = [
                (round(plan.beat_to_seconds(hit.start) * SAMPLE_RATE), hit.drum, hit.velocity)
                for hit in plan.drums
                if (hit.drum in _CYMBALS) == wanted
            ]
            place_hits(buses[bus_name], kit, hits)

    send_level = _REVERB_SEND[plan.genre]
    send = send_level * (buses["lead"] + buses["comp"] + 0.7 * buses["pad"])
    left, right = _reverb(send.astype(np.float32))
    for name, (level, pan) in _PARTS.items():
        # Constant-power pan law: a part keeps its loudness wherever it sits.
        left += np.float32(level * math.cos(pan * math.pi / 2)) * buses[name]
        right += np.float32(level * math.sin(pan * math.pi / 2)) * buses[name]
    return _master(left, right)
