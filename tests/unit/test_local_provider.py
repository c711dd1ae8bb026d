"""The local provider makes real, decodable, deterministic songs that follow genre and mood.

Only a handful of songs are rendered (about 0.3 s each); everything that can be checked on the
composition plan or the lyrics alone is checked there.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from dataclasses import replace

import miniaudio
import numpy as np
import numpy.typing as npt
import pytest

from services.generator.providers.base import GeneratedSong, SongProvider, SongRequest
from services.generator.providers.local import LocalProvider, render_song
from services.generator.providers.local.encode import id3v2_tag
from services.generator.providers.local.lyrics import story_words, write_lyrics
from services.generator.providers.local.lyrics_templates import (
    DATE_LINES,
    MEMORY_LINES,
    MOODS,
    OCCASIONS,
    OUTROS,
    WORD_LINES,
)
from services.generator.providers.local.music import (
    GENRES,
    MAX_SECONDS,
    MIN_SECONDS,
    CompositionPlan,
    compose,
    render,
)
from services.generator.providers.local.music import MOODS as MUSIC_MOODS
from services.generator.providers.local.text import shorten
from services.generator.providers.local.theory import MODES

ORDER_ID = uuid.UUID("6f1c2a4e-0b7d-4c55-9d3e-2f8a1b9c7d10")
UNICODE_NAME = "Zoë 王小明 👩‍🎤"
ARABIC_NAME = "ليلى أحمد"  # Layla Ahmad, right to left.
COMBINING_NAME = "Zoe\u0308 A\u030asa Nguye\u0302\u0303n"  # Decomposed accents, kept as typed.
LONG_NAME = " ".join(["Maximiliana"] * 9)[:100]
STORY_SENTENCE = "We met at the lake in Lisbon, and she laughed so hard she fell in the water. "
LONG_STORY = (STORY_SENTENCE * 30)[:2000]


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


def _decode(song: GeneratedSong) -> tuple[npt.NDArray[np.float32], int, int]:
    """Samples as (frames, channels) float32, the sample rate and the channel count."""
    decoded = miniaudio.decode(song.audio, output_format=miniaudio.SampleFormat.FLOAT32)
    samples = np.frombuffer(decoded.samples, dtype=np.float32)
    return samples.reshape(-1, decoded.nchannels), int(decoded.sample_rate), int(decoded.nchannels)


def _onsets_per_second(samples: npt.NDArray[np.float32], rate: int) -> float:
    """Note onsets per second, by spectral flux: the rise in log-magnitude between frames.

    An onset is a frame whose flux is the largest within about 50 ms and stands clear of the
    running median of the flux around it (half a second each way).
    """
    mono = samples.mean(axis=1)
    frame, hop, reach, context = 2048, 512, 4, 20
    windows = np.lib.stride_tricks.sliding_window_view(mono, frame)[::hop] * np.hanning(frame)
    magnitude = np.log1p(10.0 * np.abs(np.fft.rfft(windows, axis=1)))
    flux = np.maximum(np.diff(magnitude, axis=0), 0.0).sum(axis=1)
    flux /= flux.max()
    nearby = np.lib.stride_tricks.sliding_window_view(
        np.pad(flux, reach, mode="edge"), 2 * reach + 1
    )
    around = np.lib.stride_tricks.sliding_window_view(
        np.pad(flux, context, mode="edge"), 2 * context + 1
    )
    onsets = (flux >= nearby.max(axis=1)) & (flux > np.median(around, axis=1) + 0.05)
    return float(onsets.sum()) / (len(mono) / rate)


def _id3_frames(data: bytes) -> tuple[dict[str, bytes], int]:
    """The frames of the ID3v2.3 tag at the start of ``data`` and the tag's total length."""
    assert data[:5] == b"ID3\x03\x00"
    size = 0
    for byte in data[6:10]:
        assert byte < 0x80, "tag size must be syncsafe"
        size = (size << 7) | byte
    frames: dict[str, bytes] = {}
    position = 10
    while position < 10 + size and data[position] != 0:
        frame_id = data[position : position + 4].decode("ascii")
        length = int.from_bytes(data[position + 4 : position + 8], "big")
        frames[frame_id] = data[position + 10 : position + 10 + length]
        position += 10 + length
    return frames, 10 + size


def _id3_text(payload: bytes) -> str:
    assert payload[:3] == b"\x01\xff\xfe", "text must be UTF-16 with a byte-order mark"
    return payload[1:].decode("utf-16").rstrip("\x00")


@pytest.fixture(scope="module")
def pop_song() -> GeneratedSong:
    return render_song(_request())


@pytest.fixture(scope="module")
def unicode_song() -> GeneratedSong:
    return render_song(
        _request(recipient_name=UNICODE_NAME, story=LONG_STORY, genre="jazz", mood="romantic")
    )


def test_song_decodes_to_its_stated_duration_at_44100_hz(pop_song: GeneratedSong) -> None:
    samples, rate, channels = _decode(pop_song)
    assert (pop_song.extension, pop_song.content_type) == ("mp3", "audio/mpeg")
    assert rate == 44_100
    assert channels == 2
    assert len(samples) / rate == pytest.approx(pop_song.duration_seconds, abs=0.5)


def _assert_audible_without_clipping(samples: npt.NDArray[np.float32]) -> None:
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    assert rms > 0.05
    assert np.mean(np.abs(samples) >= 0.999) <= 0.001


def test_song_is_audible_and_never_clips(pop_song: GeneratedSong) -> None:
    samples, _, _ = _decode(pop_song)
    _assert_audible_without_clipping(samples)
    # And it starts and ends quietly: a fade-in and a fade-out, no hard edges.
    assert float(np.abs(samples[:100]).max()) < 0.05
    assert float(np.abs(samples[-2000:]).max()) < 0.05


def test_id3_tag_carries_the_title_and_artist(unicode_song: GeneratedSong) -> None:
    frames, tag_length = _id3_frames(unicode_song.audio)
    assert _id3_text(frames["TIT2"]) == unicode_song.title
    assert _id3_text(frames["TPE1"]) == "serenade"
    # The MPEG audio starts right after the tag: its size field is right.
    assert unicode_song.audio[tag_length] == 0xFF
    assert unicode_song.audio[tag_length + 1] & 0xE0 == 0xE0


def test_id3_tag_round_trips_any_unicode_title() -> None:
    for title in (UNICODE_NAME, ARABIC_NAME, COMBINING_NAME, "\ud800 lone surrogate"):
        frames, _ = _id3_frames(id3v2_tag(title) + b"\xff\xfb")
        expected = title.encode("utf-16-le", errors="replace").decode("utf-16-le")
        assert _id3_text(frames["TIT2"]) == expected


def test_same_order_and_variant_give_identical_bytes(pop_song: GeneratedSong) -> None:
    again = render_song(_request())
    assert again.audio == pop_song.audio
    assert (again.title, again.lyrics) == (pop_song.title, pop_song.lyrics)


def test_variants_of_one_order_differ_in_progression_melody_and_bytes(
    pop_song: GeneratedSong,
) -> None:
    plans = [compose(ORDER_ID, variant, "pop", "joyful") for variant in (1, 2, 3)]
    for first, second in itertools.combinations(plans, 2):
        assert first.chord_progression != second.chord_progression
        assert first.melody_pitches != second.melody_pitches
    songs = [pop_song, *(render_song(_request(variant_number=v)) for v in (2, 3))]
    assert len({song.audio for song in songs}) == 3
    assert len({song.title for song in songs}) == 3


def test_variants_are_not_transpositions_of_each_other() -> None:
    for variant_a, variant_b in itertools.combinations(range(1, 6), 2):
        a = compose(ORDER_ID, variant_a, "rock", "epic")
        b = compose(ORDER_ID, variant_b, "rock", "epic")
        intervals_a = np.diff(a.melody_pitches)
        intervals_b = np.diff(b.melody_pitches)
        assert len(intervals_a) != len(intervals_b) or not np.array_equal(intervals_a, intervals_b)


def test_lullaby_is_slower_and_sparser_than_rock() -> None:
    for genre in ("lullaby", "rock"):
        samples, _, _ = _decode(render_song(_request(genre=genre, mood="heartfelt")))
        _assert_audible_without_clipping(samples)
    # The band alone: the voice sings the same lyric, syllable by syllable, in every genre.
    lullaby_band = render(compose(ORDER_ID, 1, "lullaby", "heartfelt"))
    rock_band = render(compose(ORDER_ID, 1, "rock", "heartfelt"))
    lullaby_rate = _onsets_per_second(lullaby_band, 44_100)
    rock_rate = _onsets_per_second(rock_band, 44_100)
    assert lullaby_rate < 0.6 * rock_rate
    for variant in range(1, 6):
        for mood in MUSIC_MOODS:
            slow = compose(ORDER_ID, variant, "lullaby", mood)
            fast = compose(ORDER_ID, variant, "rock", mood)
            assert slow.tempo_bpm < fast.tempo_bpm
            assert not slow.drums
            assert fast.drums


def test_every_mood_has_a_distinct_progression_for_each_variant_number() -> None:
    for mood in MUSIC_MOODS.values():
        assert len(set(mood.progressions)) >= 5


def test_every_genre_and_mood_lasts_between_20_and_45_seconds() -> None:
    for genre, mood, variant in itertools.product(GENRES, MUSIC_MOODS, range(1, 6)):
        plan = compose(uuid.UUID(int=variant * 7_919), variant, genre, mood)
        assert MIN_SECONDS <= plan.duration_seconds <= MAX_SECONDS, (genre, mood, variant)
        assert [section.name for section in plan.sections][-1] == "outro"
        assert "chorus" in {section.name for section in plan.sections}


def _chord_tones(plan: CompositionPlan, degree: int) -> set[int]:
    return {plan.key.pitch(degree + step) % 12 for step in (0, 2, 4, 6)}


def test_melody_stays_in_key_over_the_chords_with_the_bass_on_roots() -> None:
    for genre, mood in itertools.product(GENRES, MUSIC_MOODS):
        plan = compose(ORDER_ID, 2, genre, mood)
        scale = {(plan.key.root + step) % 12 for step in MODES[plan.key.mode]}
        progression = plan.chord_progression
        assert {pitch % 12 for pitch in plan.melody_pitches} <= scale
        for note in plan.melody:
            degree = progression[int(note.start // plan.beats_per_bar)]
            if note.start == int(note.start):
                assert note.pitch % 12 in _chord_tones(plan, degree), (genre, mood, note)
        for note in plan.bass:
            if note.start % plan.beats_per_bar == 0:
                degree = progression[int(note.start // plan.beats_per_bar)]
                assert note.pitch % 12 == plan.key.pitch(degree) % 12, (genre, mood, note)


@pytest.mark.parametrize(
    "name",
    [UNICODE_NAME, ARABIC_NAME, COMBINING_NAME, LONG_NAME, "王" * 100, "👩‍🎤" * 33, "Ada"],
    ids=["emoji-cjk", "arabic", "combining", "long-spaced", "long-cjk", "long-emoji", "plain"],
)
def test_lyrics_name_the_recipient_for_any_unicode_name(name: str) -> None:
    for variant, story in ((1, None), (2, LONG_STORY), (3, "")):
        text = write_lyrics(_request(recipient_name=name, story=story, variant_number=variant))
        assert name in text.lyrics
        assert text.title.strip()
        assert len(text.title) <= 80
        for part in (text.title, text.lyrics):
            assert "{" not in part
            assert "}" not in part


def test_lyrics_use_the_story_and_differ_by_variant() -> None:
    texts = [write_lyrics(_request(variant_number=variant)) for variant in range(1, 6)]
    assert len({text.lyrics for text in texts}) == 5
    assert len({text.title for text in texts}) == 5
    story_words = ("lake", "Lisbon", "coffee", "sea")
    assert all(any(word in text.lyrics for word in story_words) for text in texts)


def test_story_words_keep_their_accents_and_skip_filler() -> None:
    rain = "\u0645\u0645\u0637\u0631\u0627\u064b"  # Arabic "rainy", ending in a vowel sign.
    words = story_words(f"We loved Mu\u0308nchen and the caf\u00e9s, we don't forget {rain}.")
    assert "Mu\u0308nchen" in words  # Decomposed umlaut kept with its letter.
    assert "caf\u00e9s" in words
    assert rain in words
    assert not {"We", "and", "the", "don't"} & set(words)


def test_long_names_are_cut_at_word_or_character_cluster_boundaries() -> None:
    assert shorten(LONG_NAME, 40) == "Maximiliana Maximiliana Maximiliana\u2026"
    emoji = shorten("👩‍🎤" * 33, 40)
    assert emoji.endswith("\u2026")
    assert len(emoji[:-1]) % 3 == 0  # Whole woman-singer sequences only.
    accents = shorten("e\u0301" * 50, 40)
    assert not accents[:-1].endswith("e")  # Never an e without its accent.


def test_every_lyric_template_fills_completely() -> None:
    fields = {
        "name": "Ada",
        "names": "Ada\u2019s",
        "moment": "the day",
        "memory": "we met",
        "word_a": "lake",
        "word_b": "sea",
        "date": "the 1st of May",
    }
    templates = [*MEMORY_LINES, *WORD_LINES, *DATE_LINES, *OUTROS]
    templates += [line for lines in MOODS.values() for line in lines]
    for occasion in OCCASIONS.values():
        templates += [*occasion.titles, *occasion.openers, *occasion.lines]
        templates += [line for chorus in occasion.choruses for line in chorus]
        assert len(occasion.titles) >= 5  # One title per variant number.
    for template in templates:
        filled = template.format(**fields)
        assert "{" not in filled
        assert "}" not in filled


async def test_local_provider_renders_off_the_event_loop(pop_song: GeneratedSong) -> None:
    provider = LocalProvider()
    assert isinstance(provider, SongProvider)
    song = await provider.generate(_request())
    assert song == pop_song
