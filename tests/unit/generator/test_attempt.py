"""One provider run: timeout, keep-alive, abandon; and what counts as a storable song."""

from __future__ import annotations

import asyncio

import pytest

from services.generator.attempt import (
    Abandoned,
    InvalidSong,
    ProviderTimeout,
    check_song,
    run_provider,
)
from services.generator.providers.base import GeneratedSong

_SONG = GeneratedSong(
    audio=b"RIFF", extension="wav", content_type="audio/wav", duration_seconds=1.0,
    title="t", lyrics="l",
)  # fmt: skip


class _Slow:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.cancelled = False

    async def run(self) -> GeneratedSong:
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return _SONG


async def test_the_song_comes_back_and_the_message_is_kept_alive_meanwhile() -> None:
    beats: list[float] = []

    async def keep_alive() -> None:
        beats.append(asyncio.get_running_loop().time())

    song = await run_provider(
        _Slow(0.35).run(), timeout=5, keep_alive=keep_alive, heartbeat=0.1,
        abandon=asyncio.Event(),
    )  # fmt: skip

    assert song is _SONG
    assert len(beats) >= 2


async def test_a_provider_over_its_time_is_a_timeout_and_is_cancelled() -> None:
    slow = _Slow(10)

    async def keep_alive() -> None:
        return None

    with pytest.raises(ProviderTimeout, match=r"longer than 0\.1 s"):
        await run_provider(
            slow.run(), timeout=0.1, keep_alive=keep_alive, heartbeat=1, abandon=asyncio.Event()
        )
    assert slow.cancelled


async def test_abandoning_stops_the_provider_and_says_so() -> None:
    slow = _Slow(10)
    abandon = asyncio.Event()

    async def keep_alive() -> None:
        return None

    asyncio.get_running_loop().call_later(0.05, abandon.set)
    with pytest.raises(Abandoned):
        await run_provider(
            slow.run(), timeout=5, keep_alive=keep_alive, heartbeat=1, abandon=abandon
        )
    assert slow.cancelled


async def test_a_failing_keep_alive_does_not_fail_the_work() -> None:
    async def keep_alive() -> None:
        raise ConnectionError("NATS is away")

    song = await run_provider(
        _Slow(0.25).run(), timeout=5, keep_alive=keep_alive, heartbeat=0.05,
        abandon=asyncio.Event(),
    )  # fmt: skip
    assert song is _SONG


async def test_a_provider_error_is_raised_as_it_is() -> None:
    async def broken() -> GeneratedSong:
        raise ValueError("no tune today")

    async def keep_alive() -> None:
        return None

    with pytest.raises(ValueError, match="no tune today"):
        await run_provider(
            broken(), timeout=5, keep_alive=keep_alive, heartbeat=1, abandon=asyncio.Event()
        )


async def test_a_song_at_hand_comes_back_without_waiting_even_when_stopping() -> None:
    # Done in its first step (the instant provider): returned as a wait would have found it,
    # before the abandon that was already asked for.
    async def at_once() -> GeneratedSong:
        return _SONG

    async def keep_alive() -> None:
        raise AssertionError("no heartbeat for a song at hand")

    abandon = asyncio.Event()
    abandon.set()
    tasks_before = len(asyncio.all_tasks())

    song = await run_provider(
        at_once(), timeout=5, keep_alive=keep_alive, heartbeat=0.001, abandon=abandon
    )

    assert song is _SONG
    assert len(asyncio.all_tasks()) == tasks_before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"audio": b""}, "no audio"),
        ({"extension": "../../etc"}, "file extension"),
        ({"extension": "MP3"}, "file extension"),
        ({"duration_seconds": -1.0}, "duration"),
        ({"duration_seconds": float("nan")}, "duration"),
    ],
)
def test_a_song_that_cannot_be_stored_is_refused(change: dict[str, object], message: str) -> None:
    fields = {
        "audio": _SONG.audio, "extension": _SONG.extension, "content_type": _SONG.content_type,
        "duration_seconds": _SONG.duration_seconds, "title": _SONG.title, "lyrics": _SONG.lyrics,
    } | change  # fmt: skip
    with pytest.raises(InvalidSong, match=message):
        check_song(GeneratedSong(**fields))  # type: ignore[arg-type]


def test_a_good_song_passes() -> None:
    assert check_song(_SONG) is _SONG
