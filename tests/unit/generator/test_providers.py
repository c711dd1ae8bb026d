from __future__ import annotations

import datetime as dt
import io
import random
import sys
import time
import uuid
import wave

import pytest

from services.generator.metrics import TimedProvider
from services.generator.providers import (
    ChaosProvider,
    InjectedFailure,
    InstantProvider,
    ProviderUnavailable,
    concurrency_limit,
    load_provider,
    provider_by_name,
    slots_for,
)
from services.generator.providers.base import SongProvider, SongRequest
from shared.settings import Settings


def _request(number: int = 1) -> SongRequest:
    return SongRequest(
        order_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        recipient_name="Ana",
        occasion="mothers_day",
        genre="jazz",
        mood="nostalgic",
        story="she taught me to ride a bike",
        occasion_date=dt.date(2026, 5, 10),
        variant_number=number,
    )


async def test_instant_makes_a_short_valid_wav_with_words_from_the_order() -> None:
    song = await InstantProvider().generate(_request(2))

    with wave.open(io.BytesIO(song.audio), "rb") as audio:
        seconds = audio.getnframes() / audio.getframerate()
        assert audio.getnchannels() == 1
    assert seconds == pytest.approx(song.duration_seconds)
    assert 0 < song.duration_seconds < 1
    assert (song.extension, song.content_type) == ("wav", "audio/wav")
    assert "Ana" in song.title
    assert "mothers day" in song.title
    assert "take 2" in song.title
    assert "ride a bike" in song.lyrics


async def test_instant_variants_of_one_order_sound_different() -> None:
    provider = InstantProvider()
    first, second = await provider.generate(_request(1)), await provider.generate(_request(2))
    assert first.audio != second.audio


def test_the_provider_is_chosen_by_name() -> None:
    assert isinstance(provider_by_name("instant"), InstantProvider)
    third_party = provider_by_name("services.generator.providers.instant:InstantProvider")
    assert isinstance(third_party, InstantProvider)
    assert isinstance(third_party, SongProvider)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bogus", "unknown provider 'bogus'"),
        ("no_such_module_anywhere:Thing", "cannot be imported"),
        ("services.generator.providers.instant:Nope", "has no attribute 'Nope'"),
        ("services.generator.providers.instant:tone_wav", "could not be created"),
        ("tests.integration.generator.providers:NotAProvider", "not a SongProvider"),
        (":Thing", "package.module:Class"),
    ],
)
def test_a_provider_that_cannot_be_used_is_refused_with_a_clear_error(
    name: str, message: str
) -> None:
    with pytest.raises(ProviderUnavailable, match=message):
        provider_by_name(name)


def test_local_that_cannot_be_imported_is_a_clear_startup_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A None entry in sys.modules makes the import fail, as a missing package would.
    monkeypatch.setitem(sys.modules, "services.generator.providers.local", None)
    with pytest.raises(ProviderUnavailable, match="the local provider cannot be imported"):
        provider_by_name("local")


def test_chaos_settings_wrap_any_provider() -> None:
    plain = load_provider(Settings(provider="instant"))
    wrapped = load_provider(
        Settings(provider="instant", provider_failure_rate=0.25, provider_delay_ms=150)
    )

    assert isinstance(plain, InstantProvider)
    assert isinstance(wrapped, ChaosProvider)
    assert isinstance(wrapped.inner, InstantProvider)
    assert (wrapped.failure_rate, wrapped.delay_seconds) == (0.25, 0.15)


async def _successes(provider: ChaosProvider, attempts: int) -> list[bool]:
    outcomes = []
    for _ in range(attempts):
        try:
            await provider.generate(_request())
        except InjectedFailure:
            outcomes.append(False)
        else:
            outcomes.append(True)
    return outcomes


async def test_chaos_fails_the_configured_fraction_repeatably_with_a_seed() -> None:
    def seeded() -> ChaosProvider:
        rng = random.Random(7)  # noqa: S311 - repeatable drills, not secrets
        return ChaosProvider(InstantProvider(), failure_rate=0.5, rng=rng)

    first = await _successes(seeded(), 40)
    again = await _successes(seeded(), 40)

    assert first == again
    assert 10 < first.count(False) < 30


async def test_chaos_with_rate_one_always_fails_after_its_delay() -> None:
    provider = ChaosProvider(InstantProvider(), failure_rate=1.0, delay_seconds=0.05)
    started = time.monotonic()
    with pytest.raises(InjectedFailure, match="SERENADE_PROVIDER_FAILURE_RATE=1"):
        await provider.generate(_request())
    assert time.monotonic() - started >= 0.05


def test_a_waiting_provider_takes_the_configured_concurrency_a_rendering_one_its_own_limit() -> (
    None
):
    settings = Settings(provider="instant", provider_delay_ms=2000)
    waiting = TimedProvider(load_provider(settings))
    assert concurrency_limit(waiting) is None
    assert slots_for(settings.generator_concurrency, waiting) == settings.generator_concurrency
    assert settings.generator_concurrency >= 600  # 300 songs/s at 2 s each, in one process

    rendering = TimedProvider(load_provider(Settings(provider="local", provider_delay_ms=10)))
    limit = concurrency_limit(rendering)
    assert limit is not None
    assert 1 <= limit <= 32
    assert slots_for(settings.generator_concurrency, rendering) == limit
    assert slots_for(2, rendering) == min(2, limit)
