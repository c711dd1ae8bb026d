"""Speaks a song's lines with eSpeak NG, in a process of its own, and writes the audio and timings.

Run by ``speech.speak`` as ``python -I -S espeak_worker.py`` with a JSON request on stdin; it
imports nothing but the standard library (the library and data paths come in the request), so
it starts in a few milliseconds. Why a process per song: libespeak-ng keeps state from one
utterance to the next (the phase of its voice source, among others) that neither
``espeak_Terminate`` nor reseeding resets, so the same line spoken twice in one process comes
out a few samples different. A fresh process, its random numbers seeded, speaks the same lines
the same way every time, which keeps a song byte-identical.

Output, per line: two little-endian uint32 (length of the events JSON, length of the PCM), the
events JSON (a list of [kind, text position, length, milliseconds, IPA]), then the PCM (int16,
mono, at the rate eSpeak reports).
"""

from __future__ import annotations

import ctypes
import json
import struct
import sys

_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS: audio comes back through the callback.
_OPTIONS = 0x0001 | 0x0002 | 0x8000  # Phoneme events, in IPA; return errors, don't exit.
_CHARS_UTF8 = 1
_SSML = 0x10  # Lines are SSML: a name in another script is read by that language's voice.
_RATE, _PITCH, _RANGE = 1, 3, 4  # espeak_PARAMETER values.
_LIST_TERMINATED, _WORD, _PHONEME = 0, 1, 7


class _Event(ctypes.Structure):
    _fields_ = (  # espeak_EVENT from speak_lib.h.
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    )


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


def main() -> None:
    """Read the request, speak each line, write each line's events and PCM to stdout."""
    request = json.load(sys.stdin)
    library = ctypes.CDLL(request["library"])
    library.espeak_Initialize.restype = ctypes.c_int
    library.espeak_Synth.argtypes = (
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    )
    rate = library.espeak_Initialize(_SYNCHRONOUS, 0, request["data"].encode(), _OPTIONS)
    if rate <= 0:
        sys.exit(f"eSpeak NG did not start ({rate})")
    chunks: list[bytes] = []
    events: list[list[object]] = []

    def collect(wave: ctypes.Array[ctypes.c_short], count: int, found: ctypes.Array[_Event]) -> int:
        if count > 0:
            chunks.append(ctypes.string_at(wave, count * 2))
        index = 0
        while found[index].type != _LIST_TERMINATED:
            event = found[index]
            if event.type in {_WORD, _PHONEME}:
                label = event.id.decode("utf-8", "replace") if event.type == _PHONEME else ""
                events.append(
                    [event.type, event.text_position, event.length, event.audio_position, label]
                )
            index += 1
        return 0

    callback = _CALLBACK(collect)
    library.espeak_SetSynthCallback(callback)
    if library.espeak_SetVoiceByName(request["voice"].encode()) != 0:
        sys.exit(f"eSpeak NG has no voice {request['voice']!r}")
    library.espeak_SetParameter(_RATE, int(request["words_per_minute"]), 0)
    library.espeak_SetParameter(_PITCH, int(request["pitch"]), 0)
    library.espeak_SetParameter(_RANGE, 0, 0)  # Monotone: an even line for PSOLA to re-pitch.
    # The noise in eSpeak NG's voices comes from its own generator, seeded from the clock as it
    # starts, and from the C library's rand(): fixed seeds make the noise, and so the song,
    # repeatable.
    library.espeak_ng_SetRandSeed(ctypes.c_long(request["seed"]))
    ctypes.CDLL(None).srand(ctypes.c_uint(request["seed"]))
    out = sys.stdout.buffer
    out.write(struct.pack("<I", rate))
    for line in request["lines"]:
        chunks.clear()
        events.clear()
        text = line.encode("utf-8")
        library.espeak_Synth(text, len(text) + 1, 0, 0, 0, _CHARS_UTF8 | _SSML, None, None)
        timings = json.dumps(events).encode("utf-8")
        pcm = b"".join(chunks)
        out.write(struct.pack("<II", len(timings), len(pcm)) + timings + pcm)
    out.flush()


if __name__ == "__main__":
    main()
