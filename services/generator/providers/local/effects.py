"""Mix-bus effects: a diffuse stereo reverb and a clean peak limiter, both fully vectorised.

The reverb convolves the send with exponentially decaying noise (the impulse response of a
diffuse room), computed at a quarter of the sample rate: reverb tails are dark anyway, and the
FFTs cost a quarter as much. The limiter lowers the gain around peaks instead of clipping them,
so the song can be loud without distortion.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt

from .plan import SAMPLE_RATE

__all__ = ["limit_peaks", "reverb"]

Signal = npt.NDArray[np.float32]

_DECIMATION = 4
_REVERB_RATE = SAMPLE_RATE / _DECIMATION
_PRE_DELAY_SECONDS = 0.018  # Gap before the first reflection: the size of the room.
_IMPULSE_SEED = 20_240_611  # Any fixed number: the room is part of the sound, not random.
_LIMITER_BLOCK = 256  # Samples per gain step (about 6 ms).
_LIMITER_REACH = 6  # Blocks each side over which the gain eases in and out (about 35 ms).


@functools.lru_cache(maxsize=8)
def _impulse(decay_seconds: float) -> npt.NDArray[np.float32]:
    """Left and right impulse responses, shape (2, n): independent noise, same decay."""
    length = int(decay_seconds * _REVERB_RATE)
    seconds = np.arange(length, dtype=np.float64) / _REVERB_RATE
    envelope = np.exp(-6.9 * seconds / decay_seconds)  # -60 dB at ``decay_seconds`` (RT60).
    envelope[: int(_PRE_DELAY_SECONDS * _REVERB_RATE)] = 0.0
    noise = np.random.default_rng(_IMPULSE_SEED).standard_normal((2, length))
    impulse = noise * envelope / math.sqrt(float(np.sum(envelope**2)))
    result: npt.NDArray[np.float32] = impulse.astype(np.float32)
    result.flags.writeable = False
    return result


def _fft_size(minimum: int) -> int:
    """The smallest 2^a 3^b 5^c at least ``minimum``: fast for FFT, little wasted padding."""
    best = 1 << (minimum - 1).bit_length()
    fives = 1
    while fives < best:
        threes = fives
        while threes < best:
            size = threes
            while size < minimum:
                size *= 2
            best = min(best, size)
            threes *= 3
        fives *= 5
    return best


def reverb(send: Signal, decay_seconds: float) -> tuple[Signal, Signal]:
    """The wet left and right signals of ``send`` played into a room with this RT60."""
    length = len(send)
    blocks = -(-length // _DECIMATION)
    padded = np.zeros(blocks * _DECIMATION, dtype=np.float32)
    padded[:length] = send
    # Box filter, then every 4th sample; float64 because numpy's FFT is fastest there.
    low = padded.reshape(blocks, _DECIMATION).mean(axis=1, dtype=np.float64)
    impulse = _impulse(decay_seconds)
    size = _fft_size(blocks + impulse.shape[1])
    spectrum = np.fft.rfft(low, size)
    sides = []
    for response in impulse:
        wet = np.fft.irfft(spectrum * np.fft.rfft(response, size), size)[:blocks]
        # Linear interpolation back to full rate; the images it leaves are far below audible.
        sides.append(_block_ramps(wet.astype(np.float32), _DECIMATION)[:length])
    return sides[0], sides[1]


def _block_ramps(values: npt.NDArray[np.float32], factor: int) -> Signal:
    """Linear interpolation from one value per block to one per sample (``factor`` per block)."""
    padded = np.append(values, values[-1:])
    steps = np.arange(factor, dtype=np.float32) / np.float32(factor)
    start, step = padded[:-1, None], (padded[1:] - padded[:-1])[:, None]
    ramps: Signal = (start + step * steps).ravel()
    return ramps


def limit_peaks(stereo: Signal, threshold: float) -> None:
    """Turn ``stereo`` (peak 1.0) down around its peaks so no sample exceeds ``threshold``.

    Works in place. Gain is computed per block from the loudest sample nearby, taken as the
    minimum over the neighbouring blocks and then averaged over a narrower window (so it never
    exceeds what any peak needs), and ramped linearly from block to block. Peaks are turned
    down, never clipped, and the gain never jumps, so nothing clicks.
    """
    length = len(stereo)
    blocks = -(-length // _LIMITER_BLOCK)
    whole = (length // _LIMITER_BLOCK) * _LIMITER_BLOCK
    framed = stereo[:whole].reshape(-1, _LIMITER_BLOCK * 2)
    peaks = np.maximum(framed.max(axis=1), -framed.min(axis=1))
    if whole < length:
        tail = stereo[whole:]
        peaks = np.append(peaks, max(float(tail.max()), -float(tail.min())))
    needed = np.minimum(1.0, threshold / np.maximum(peaks, 1e-9))
    reach = _LIMITER_REACH
    edged = np.pad(needed, 2 * reach, mode="edge")
    floor = np.lib.stride_tricks.sliding_window_view(edged, 2 * reach + 1).min(axis=1)
    smooth = np.lib.stride_tricks.sliding_window_view(floor, reach + 1).mean(axis=1)
    # smooth[b + reach // 2] is the gain for the centre of block b. Ramping from one centre to
    # the next means the ramps start half a block before sample 0: one extra value in front.
    centred = smooth[reach // 2 : reach // 2 + blocks].astype(np.float32)
    centred = np.concatenate([centred[:1], centred])
    half = _LIMITER_BLOCK // 2
    gain = _block_ramps(centred, _LIMITER_BLOCK)[half : half + length]
    stereo *= gain[:, None]
