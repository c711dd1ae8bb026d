"""Loudness normalisation of the finished mix (ITU-R BS.1770 integrated loudness, by pyloudnorm).

Every song leaves at the same loudness, whatever its genre, arrangement or voice, so one song
of an order is never noticeably louder than another. The mix arrives limited with its peaks at
full scale and well above the target, so reaching the target is a plain gain down; a peak
limiter still guards the ceiling should a mix ever need lifting.
"""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt
import pyloudnorm

from .effects import limit_peaks
from .plan import SAMPLE_RATE

__all__ = ["CEILING_DBFS", "TARGET_LUFS", "normalise_loudness"]

TARGET_LUFS = -14.0  # What the streaming services play music at.
# (The MP3 decodes about 0.5 LU quieter than the mix LAME is given, flat across the spectrum.)
CEILING_DBFS = -1.0  # Sample peak ceiling: room for the MP3 encoder's overshoot.
_ROUNDS = 3  # Gain, limit, measure again: converges in one round unless limiting was needed.
_TOLERANCE_LU = 0.1

# Measured on every other sample: aliasing folds the top octave down, but into the band where
# the K-weighting is as flat as where it came from, so the figure moves by about 0.01 LU while
# the filters cost half. The meter holds only the rate and filter names: safe to share.
_METER = pyloudnorm.Meter(SAMPLE_RATE // 2)
# pyloudnorm silences numpy's warnings with warnings.catch_warnings(), which swaps a process-wide
# filter list: two songs measured at once (the provider renders in threads) could leave the
# other's filters behind. One measurement at a time; each takes a few tens of milliseconds.
_MEASURING = threading.Lock()


def _peak(stereo: npt.NDArray[np.float32]) -> float:
    return max(float(stereo.max()), -float(stereo.min()), 1e-9)


def normalise_loudness(stereo: npt.NDArray[np.float32]) -> None:
    """Bring ``stereo`` (samples, 2) to :data:`TARGET_LUFS` in place, peaks at most the ceiling."""
    ceiling = 10.0 ** (CEILING_DBFS / 20.0)
    for _ in range(_ROUNDS):
        with _MEASURING:
            loudness = float(_METER.integrated_loudness(stereo[::2]))
        if not np.isfinite(loudness) or abs(loudness - TARGET_LUFS) <= _TOLERANCE_LU:
            break
        stereo *= np.float32(10.0 ** ((TARGET_LUFS - loudness) / 20.0))
        if _peak(stereo) <= ceiling:
            break
        limit_peaks(stereo, ceiling)
    if _peak(stereo) > ceiling:
        limit_peaks(stereo, ceiling)
