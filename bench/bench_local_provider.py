"""Benchmark of the local song provider: CPU per song, peak memory, and memory over many renders.

Run: ``.venv/bin/python bench/bench_local_provider.py [renders]`` (default 220). Each song is
rendered on one core; figures are CPU time (``os.times``: this process and the eSpeak NG process
each song starts), so waiting on a busy machine does not count, though a loaded machine's
shared caches still slow each CPU second down. The budget is 1.0 CPU second per 30 seconds of
audio with vocals, MP3 included. Without the ``vocals`` extra installed the songs are
instrumental and the script says so.
"""

from __future__ import annotations

import gc
import os
import resource
import sys
import time
import tracemalloc
import uuid
from dataclasses import dataclass

import psutil

from services.generator.providers.base import SongRequest
from services.generator.providers.local import render_song, voice_for
from services.generator.providers.local.encode import encode_mp3
from services.generator.providers.local.lyrics import write_lyrics
from services.generator.providers.local.music import GENRES, MOODS, compose, render
from services.generator.providers.local.singer import engine, sing

BUDGET_PER_30_SECONDS = 1.0
TIMED_SONGS = 24  # Three per genre.
DEFAULT_RENDERS = 220
EARLY_CHECKPOINT = 20


@dataclass
class Timing:
    """CPU seconds spent on the songs of one genre, split into music and MP3 encoding."""

    songs: int = 0
    audio_seconds: float = 0.0
    music_seconds: float = 0.0
    voice_seconds: float = 0.0
    encode_seconds: float = 0.0
    worst_per_30: float = 0.0

    def per_30(self, seconds: float) -> float:
        return 30.0 * seconds / self.audio_seconds


def _request(number: int) -> SongRequest:
    genres, moods = list(GENRES), list(MOODS)
    return SongRequest(
        order_id=uuid.UUID(int=1_000_003 * (number // 3 + 1)),
        user_id=uuid.UUID(int=1),
        recipient_name="Ada Lovelace",
        occasion="birthday",
        genre=genres[number % len(genres)],
        mood=moods[number % len(moods)],
        story="We met at the lake in Lisbon and talked about engines all night.",
        occasion_date=None,
        variant_number=number % 5 + 1,
    )


def _rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the eSpeak NG process)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _time_songs() -> dict[str, Timing]:
    timings: dict[str, Timing] = {genre: Timing() for genre in GENRES}
    render_song(_request(0))  # Warm caches (wavetables, impulse responses) outside the timing.
    for number in range(TIMED_SONGS):
        request = _request(number)
        started = _cpu()
        text = write_lyrics(request)
        plan = compose(request.order_id, request.variant_number, request.genre, request.mood)
        composed = _cpu()
        vocal = sing(plan, text, voice_for(request))
        sung = _cpu()
        samples = render(plan, vocal)
        rendered = _cpu()
        encode_mp3(samples, text.title)
        encoded = _cpu()
        timing = timings[request.genre]
        timing.songs += 1
        timing.audio_seconds += plan.duration_seconds
        timing.music_seconds += (composed - started) + (rendered - sung)
        timing.voice_seconds += sung - composed
        timing.encode_seconds += encoded - rendered
        song_per_30 = 30.0 * (encoded - started) / plan.duration_seconds
        timing.worst_per_30 = max(timing.worst_per_30, song_per_30)
    return timings


def _print_timings(timings: dict[str, Timing]) -> None:
    sung = "with vocals" if engine() is not None else "INSTRUMENTAL (no vocals extra)"
    print(f"CPU seconds per 30 s of audio, {sung} (one core, budget {BUDGET_PER_30_SECONDS}):")
    header = f"  {'genre':<9}{'songs':>6}{'audio s':>9}{'music':>8}{'voice':>8}{'mp3':>8}"
    print(f"{header}{'total':>8}{'worst':>8}")
    total = Timing()
    for genre, timing in [*timings.items(), ("all", total)]:
        if genre != "all":
            total.songs += timing.songs
            total.audio_seconds += timing.audio_seconds
            total.music_seconds += timing.music_seconds
            total.voice_seconds += timing.voice_seconds
            total.encode_seconds += timing.encode_seconds
            total.worst_per_30 = max(total.worst_per_30, timing.worst_per_30)
        parts = [timing.music_seconds, timing.voice_seconds, timing.encode_seconds]
        music, voice, mp3 = (timing.per_30(part) for part in parts)
        print(
            f"  {genre:<9}{timing.songs:>6}{timing.audio_seconds:>9.1f}{music:>8.3f}{voice:>8.3f}"
            f"{mp3:>8.3f}{music + voice + mp3:>8.3f}{timing.worst_per_30:>8.3f}"
        )
    verdict = "within" if total.worst_per_30 < BUDGET_PER_30_SECONDS else "OVER"
    print(f"  worst song: {total.worst_per_30:.3f} s per 30 s, {verdict} budget")


def _traced_peak_mb() -> float:
    """Peak bytes allocated (numpy buffers included) while rendering one song."""
    gc.collect()
    tracemalloc.start()
    render_song(_request(1))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def _memory_over_renders(renders: int) -> list[tuple[int, float, float]]:
    """(renders so far, RSS MB, traced live MB) at checkpoints over a long run of renders.

    RSS includes whatever the C allocator keeps cached, so it wobbles by a few MB; the traced
    figure counts only live Python and numpy allocations, and is the one that would climb if
    anything (a cache, a buffer) grew with every song.
    """
    step = max(renders // 10, 1)
    checkpoints = {EARLY_CHECKPOINT, *range(step, renders + 1, step), renders}
    readings: list[tuple[int, float, float]] = []
    tracemalloc.start()
    for number in range(1, renders + 1):
        render_song(_request(number))
        if number in checkpoints:
            gc.collect()
            traced, _ = tracemalloc.get_traced_memory()
            readings.append((number, _rss_mb(), traced / 2**20))
    tracemalloc.stop()
    return readings


def main() -> None:
    """Run the benchmark and print its figures."""
    renders = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_RENDERS
    renders = max(renders, EARLY_CHECKPOINT)
    _print_timings(_time_songs())
    print()
    print(f"Peak allocation during one render (tracemalloc): {_traced_peak_mb():.1f} MB")
    started = time.perf_counter()
    readings = _memory_over_renders(renders)
    elapsed = time.perf_counter() - started
    print(f"Memory over {renders} renders ({elapsed:.0f} s wall):")
    print(f"  {'renders':>8}{'RSS MB':>9}{'live MB':>9}")
    for number, rss, live in readings:
        print(f"  {number:>8}{rss:>9.1f}{live:>9.2f}")
    later = [reading for reading in readings if reading[0] >= EARLY_CHECKPOINT]
    rss_values = [rss for _, rss, _ in later]
    print(
        f"  from render {later[0][0]} to {later[-1][0]}: RSS between {min(rss_values):.1f} and"
        f" {max(rss_values):.1f} MB (allocator caching), live allocations"
        f" {later[-1][2] - later[0][2]:+.2f} MB"
    )
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KB.
    print(f"Peak RSS of the whole run (getrusage maxrss): {max_rss:.1f} MB")


if __name__ == "__main__":
    main()
