"""Just enough music theory: modes, diatonic chords, voicings and note frequencies.

Pitches are MIDI note numbers (60 is middle C). Melodies are written as *scale indices* (0 is the
tonic, 7 the tonic an octave up) so they can be moved through a progression and stay in key.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MODES", "Key", "chord_scale_indices", "midi_to_hz", "voice_chord"]

# Semitone offsets of the seven degrees of each mode the moods use. Only major and natural minor:
# their diatonic chords on the degrees the progressions use are all major or minor, never
# diminished, so no progression can land on a sour chord.
MODES: dict[str, tuple[int, ...]] = {
    "ionian": (0, 2, 4, 5, 7, 9, 11),
    "aeolian": (0, 2, 3, 5, 7, 8, 10),
}


def midi_to_hz(midi: float) -> float:
    """Equal-tempered frequency of a MIDI note, A4 (69) = 440 Hz."""
    return float(440.0 * 2.0 ** ((midi - 69.0) / 12.0))


@dataclass(frozen=True, slots=True)
class Key:
    """A key: the tonic's MIDI note (in the melody's octave) and the mode."""

    root: int
    mode: str

    def pitch(self, index: int) -> int:
        """MIDI note of a scale index, where 0 is the tonic and 7 the octave above it."""
        octave, degree = divmod(index, 7)
        return self.root + 12 * octave + MODES[self.mode][degree]


def chord_scale_indices(degree: int, size: int) -> tuple[int, ...]:
    """Scale indices of the diatonic chord on ``degree``: stacked thirds, ``size`` notes."""
    return tuple(degree + 2 * step for step in range(size))


def voice_chord(
    degree: int,
    size: int,
    key: Key,
    previous: tuple[int, ...] | None,
    register: tuple[int, int],
) -> tuple[int, ...]:
    """Pick the inversion of a chord, within ``register``, that moves least from ``previous``.

    Smooth voice leading keeps the accompaniment from jumping around the keyboard, which is what
    makes a block-chord part sound played rather than computed.
    """
    low, high = register
    pitch_classes = [key.pitch(index) % 12 for index in chord_scale_indices(degree, size)]
    candidates: list[tuple[int, ...]] = []
    for bass_note in range(low, high - 6):
        if bass_note % 12 not in pitch_classes:
            continue
        voicing = [bass_note]
        start = pitch_classes.index(bass_note % 12)
        for offset in range(1, size):
            pitch_class = pitch_classes[(start + offset) % size]
            note = voicing[-1] + 1
            while note % 12 != pitch_class:
                note += 1
            voicing.append(note)
        if voicing[-1] <= high:
            candidates.append(tuple(voicing))
    if not candidates:
        msg = f"no voicing of degree {degree} fits between {low} and {high}"
        raise ValueError(msg)
    if previous is None:
        centre = (low + high) / 2
        return min(candidates, key=lambda voicing: abs(sum(voicing) / len(voicing) - centre))
    previous_centre = sum(previous) / len(previous)

    def movement(voicing: tuple[int, ...]) -> float:
        # Each voice moves to its nearest neighbour; a small pull keeps the register steady.
        steps = sum(min(abs(note - old) for old in previous) for note in voicing)
        return steps + 0.5 * abs(sum(voicing) / len(voicing) - previous_centre)

    return min(candidates, key=movement)
