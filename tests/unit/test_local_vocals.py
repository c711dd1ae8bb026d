"""The local provider sings: measured, not listened to.

The vocal stem is checked against what the singer says it sang: its pitch, tracked frame by
frame (Praat's autocorrelation tracker, independent of the PSOLA that made it), follows the
notes; it is voiced on the syllables and silent between lines; the recipient's name is sung, on
strong beats in the chorus. The finished song is checked as a listener gets it, decoded from the
MP3: the same order gives the same bytes, variants differ in voice, loudness is on target and no
sample clips. Without the ``vocals`` extra the song is the instrumental alone.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import uuid
from dataclasses import replace

import miniaudio
import numpy as np
import numpy.typing as npt
import parselmouth
import pyloudnorm
import pytest

from services.generator.providers.base import GeneratedSong, SongRequest
from services.generator.providers.local import render_song, voice_for
from services.generator.providers.local.encode import encode_mp3
from services.generator.providers.local.loudness import TARGET_LUFS
from services.generator.providers.local.lyrics import write_lyrics
from services.generator.providers.local.mix import duck_gain
from services.generator.providers.local.music import CompositionPlan, Note, compose, render
from services.generator.providers.local.singer import VOICES, VocalStem, Voice, sing
from services.generator.providers.local.vocal_line import fit_line

ORDER_ID = uuid.UUID("0d5e1c9a-6b1f-4f0e-8a53-3c1d7e2b9f44")
RATE = 44_100
FRAME = 0.01  # Pitch-tracking step, seconds.


def _request(**changes: object) -> SongRequest:
    base = SongRequest(
        order_id=ORDER_ID,
        user_id=uuid.UUID(int=1),
        recipient_name="Ada",
        occasion="birthday",
        genre="pop",
        mood="joyful",
        story="We met at the lake in Lisbon. She loves coffee and the sea.",
        occasion_date=dt.date(2026, 6, 14),
        variant_number=1,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _plan_and_stem(request: SongRequest, voice: Voice) -> tuple[CompositionPlan, VocalStem]:
    plan = compose(request.order_id, request.variant_number, request.genre, request.mood)
    stem = sing(plan, write_lyrics(request), voice)
    assert stem is not None, "the vocals extra is installed for the tests"
    return plan, stem


@pytest.fixture(scope="module", params=VOICES, ids=[voice.name for voice in VOICES])
def sung(request: pytest.FixtureRequest) -> tuple[CompositionPlan, VocalStem]:
    return _plan_and_stem(_request(), request.param)


def _track(stem: VocalStem) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Frame times and F0 in Hz (0 where unvoiced) of the stem."""
    sound = parselmouth.Sound(stem.samples.astype(np.float64), sampling_frequency=RATE)
    pitch = sound.to_pitch(time_step=FRAME, pitch_floor=60.0, pitch_ceiling=1000.0)
    return np.asarray(pitch.xs()), np.asarray(pitch.selected_array["frequency"])


def _hz(midi: int) -> float:
    return 440.0 * math.pow(2.0, (midi - 69) / 12)


def test_vocal_pitch_follows_the_notes_it_sings(sung: tuple[CompositionPlan, VocalStem]) -> None:
    _, stem = sung
    times, f0 = _track(stem)
    within = voiced = note_frames = 0
    for syllable in stem.syllables:
        for note in syllable.notes:
            inside = (times >= note.start) & (times < note.end)
            note_frames += int(inside.sum())
            frames = inside & (f0 > 0)
            cents = 1200.0 * np.log2(f0[frames] / _hz(note.pitch))
            voiced += int(frames.sum())
            within += int((np.abs(cents) <= 50.0).sum())
    assert note_frames > 500  # Several seconds of singing, not a token line.
    assert voiced >= 0.6 * note_frames
    assert within >= 0.8 * voiced, f"{within} of {voiced} voiced frames within 50 cents"


def test_vocal_is_voiced_on_its_syllables_and_silent_elsewhere(
    sung: tuple[CompositionPlan, VocalStem],
) -> None:
    _, stem = sung
    times, f0 = _track(stem)
    sung_mask = np.zeros(len(stem.samples), dtype=bool)
    for syllable in stem.syllables:
        sung_mask[round(syllable.start * RATE) : round(syllable.end * RATE)] = True
        frames = (times >= syllable.start) & (times < syllable.end)
        assert (f0[frames] > 0).mean() >= 0.3, f"{syllable.word!r} at {syllable.start:.2f} s"
    assert float(np.abs(stem.samples[~sung_mask]).max()) < 1e-4
    assert float(np.abs(stem.samples[sung_mask]).max()) > 0.5


def test_the_name_is_sung_on_strong_beats_of_every_chorus(
    sung: tuple[CompositionPlan, VocalStem],
) -> None:
    plan, stem = sung
    beats = plan.beats_per_bar
    for section in (section for section in plan.sections if section.name == "chorus"):
        start = plan.beat_to_seconds(section.start_bar * beats)
        end = plan.beat_to_seconds((section.start_bar + section.bars) * beats)
        inside = [s for s in stem.syllables if start <= s.start < end]
        names = [
            s
            for s, before in zip(inside, [None, *inside], strict=False)
            if s.name and not (before is not None and before.name)
        ]
        assert names, f"no name in the chorus at {start:.1f} s"
        for syllable in names:
            assert syllable.word.strip(",.!?'") == "Ada"
            beat = syllable.start / plan.seconds_per_beat
            assert beat == pytest.approx(round(beat), abs=1e-6)
            assert round(beat) % beats in ({0, 2} if beats == 4 else {0})


def test_the_same_order_sings_the_same_samples_and_variants_change_voice() -> None:
    request = _request()
    _, first = _plan_and_stem(request, voice_for(request))
    _, again = _plan_and_stem(request, voice_for(request))
    assert np.array_equal(first.samples, again.samples)
    voices = [voice_for(_request(variant_number=number)) for number in (1, 2, 3)]
    assert len({voice.name for voice in voices}) == 3
    assert {voice.centre < 60 for voice in voices} == {True, False}  # Lower and higher.
    stems = [
        _plan_and_stem(_request(variant_number=n), voice_for(_request(variant_number=n)))
        for n in (2, 3)
    ]
    assert not np.array_equal(first.samples[: len(stems[0][1].samples)], stems[0][1].samples)


def _decode(song: GeneratedSong) -> npt.NDArray[np.float32]:
    decoded = miniaudio.decode(song.audio, output_format=miniaudio.SampleFormat.FLOAT32)
    return np.frombuffer(decoded.samples, dtype=np.float32).reshape(-1, decoded.nchannels)


@pytest.mark.parametrize("genre", ["pop", "lullaby", "rock"])
def test_songs_are_on_the_loudness_target_without_clipping(genre: str) -> None:
    request = _request(genre=genre)
    song = render_song(request)
    samples = _decode(song)
    loudness = pyloudnorm.Meter(RATE).integrated_loudness(samples.astype(np.float64))
    assert loudness == pytest.approx(TARGET_LUFS, abs=1.0)
    assert float(np.abs(samples).max()) < 0.999
    assert song.audio == render_song(request).audio


def test_the_band_ducks_under_the_voice(sung: tuple[CompositionPlan, VocalStem]) -> None:
    _, stem = sung
    gain = duck_gain(stem.samples)
    middles = [round((s.start + s.end) / 2 * RATE) for s in stem.syllables if s.end - s.start > 0.2]
    assert float(np.median(gain[middles])) < 0.8
    silent = np.ones(len(stem.samples), dtype=bool)
    for syllable in stem.syllables:
        silent[round((syllable.start - 0.5) * RATE) : round((syllable.end + 0.5) * RATE)] = False
    assert silent.any()
    assert float(gain[silent].min()) == pytest.approx(1.0)


def test_without_the_vocals_extra_the_song_is_the_instrumental(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = _request(variant_number=2)
    sung_song = render_song(request)
    for module in ("parselmouth", "espeakng_loader"):
        monkeypatch.setitem(sys.modules, module, None)  # Import now raises ImportError.
    plan = compose(request.order_id, request.variant_number, request.genre, request.mood)
    assert sing(plan, write_lyrics(request), voice_for(request)) is None
    song = render_song(request)
    assert song.audio == encode_mp3(render(plan), title=song.title)
    assert song.audio != sung_song.audio
    assert (song.title, song.lyrics) == (sung_song.title, sung_song.lyrics)
    loudness = pyloudnorm.Meter(RATE).integrated_loudness(_decode(song).astype(np.float64))
    assert loudness == pytest.approx(TARGET_LUFS, abs=1.0)


def _notes(*starts: float) -> tuple[Note, ...]:
    ends = [*starts[1:], starts[-1] + 1.0]
    return tuple(
        Note(start, end - start, 60 + i, 0.8)
        for i, (start, end) in enumerate(zip(starts, ends, strict=True))
    )


def test_fit_line_gives_every_syllable_notes_in_order() -> None:
    notes = _notes(0.0, 0.5, 1.0, 2.0, 2.5, 3.0)
    for syllables in range(1, 12):
        groups = fit_line(syllables, None, notes, 4)
        assert len(groups) == syllables
        starts = [note.start for group in groups for note in group]
        assert starts == sorted(starts)
        assert all(groups)
    melisma = fit_line(4, None, notes, 4)
    assert [len(group) for group in melisma] == [2, 1, 2, 1]  # Off-beat notes fold back.
    repeated = fit_line(8, None, notes, 4)
    assert sum(len(group) for group in repeated) == 8
    assert math.isclose(sum(n.length for g in repeated for n in g), sum(n.length for n in notes))


def test_fit_line_starts_the_name_on_a_strong_beat() -> None:
    pickup = _notes(0.5, 1.0, 1.5, 2.5, 3.0, 4.0, 5.0, 6.0)
    for before, after in ((0, 2), (2, 2), (3, 4), (6, 1), (1, 6)):
        groups = fit_line(before + after, before, pickup, 4)
        assert len(groups) == before + after
        assert groups[before][0].start % 2 == 0  # Beat 1 or 3 of a 4/4 bar.


@pytest.mark.parametrize(
    ("name", "sung_as"),
    [
        ("Zoe\u0308 A\u030asa", {"Zo\u00eb", "\u00c5sa"}),  # Decomposed accents, sung composed.
        ("Ada Lovelace", {"Ada", "Lovelace"}),
        (" ".join(["Maximiliana"] * 9), {"Maximiliana"}),  # A long name: its first word.
        # Other scripts are sung by eSpeak NG's voice for their language.
        (
            "\u0644\u064a\u0644\u0649 \u0623\u062d\u0645\u062f",
            {"\u0644\u064a\u0644\u0649", "\u0623\u062d\u0645\u062f"},
        ),
        ("\u738b\u5c0f\u660e", {"\u738b", "\u5c0f", "\u660e"}),  # Chinese: a word per character.
        ("\U0001f469\u200d\U0001f3a4" * 33, set()),  # Emoji only: the name is left out.
    ],
    ids=["combining", "two-words", "long", "arabic", "chinese", "emoji"],
)
def test_a_name_in_any_script_is_sung_and_emoji_are_left_out(name: str, sung_as: set[str]) -> None:
    request = _request(recipient_name=name, genre="jazz", mood="romantic", variant_number=4)
    _, stem = _plan_and_stem(request, voice_for(request))
    assert len(stem.syllables) > 20  # The rest of the lyric is still sung.
    named = {syllable.word.strip(",.!?'") for syllable in stem.syllables if syllable.name}
    assert named == sung_as
