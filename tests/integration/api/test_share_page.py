"""GET /s/{share_token}: the page a recipient opens, in headless Chromium and over plain HTTP.

Chromium must be installed (Debian's ``chromium``): without it these tests fail, never skip.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import re
import struct
import uuid
import wave
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from services.api.app import create_app
from shared.db import Caller, transaction
from shared.storage import audio_path, storage_from_url
from tests.browser import Chromium, Page, chromium_missing
from tests.helpers import wait_for
from tests.integration.api.live_server import serve_over_http

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg

    from shared.settings import Settings
    from tests.integration.api.support import World

PHONE_WIDTH = 375
SNEAKY = "<script>window.pwned = true</script>"
LYRICS = (
    "[Verse 1]\n"
    f"Ada wrote {SNEAKY} & more\n"
    "second line of the verse\n"
    "\n"
    "[Chorus]\n"
    "la la <b>la</b>\n"
    "sing it again"
)


@pytest.fixture(scope="module")
async def base_url(settings: Settings) -> AsyncIterator[str]:
    async with serve_over_http(create_app(settings)) as server:
        yield server.url


@pytest.fixture(scope="module")
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=15.0) as client:
        yield client


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Chromium]:
    if (why := chromium_missing()) is not None:
        pytest.fail(why)
    async with Chromium.launch() as chromium:
        yield chromium


def tiny_wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A valid mono 16-bit PCM WAV: a soft 440 Hz tone."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate)))
        for n in range(int(seconds * rate))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return buffer.getvalue()


async def finish_song(
    pool: asyncpg.Pool, settings: Settings, order: dict[str, Any], *, title: str, lyrics: str
) -> str:
    """Store a WAV for the order's first variant and mark it complete, as the generator would
    (service_role); returns its share token."""
    variant = order["variants"][0]
    key = audio_path(
        uuid.UUID(order["user_id"]), uuid.UUID(order["id"]), variant["variant_number"], "wav"
    )
    await storage_from_url(settings.resolved_storage_url).put(key, tiny_wav(), "audio/wav")
    async with transaction(pool, Caller.service()) as conn:
        await conn.execute(
            "UPDATE song_variants SET status = 'complete', storage_path = $2, title = $3,"
            " lyrics = $4, duration_seconds = 1.0, attempts = 1, started_at = now(),"
            " completed_at = now() WHERE id = $1",
            uuid.UUID(variant["id"]),
            key,
            title,
            lyrics,
        )
    return str(variant["share_token"])


async def audio_settled(page: Page) -> Any:
    return await page.evaluate(
        "(() => { const a = document.querySelector('audio');"
        " return a.readyState >= 1 || a.error !== null; })()"
    )


# --- in Chromium -----------------------------------------------------------------------------


async def test_a_finished_song_page_loads_cleanly_and_its_audio_plays_in_chromium(
    browser: Chromium, http: httpx.AsyncClient, base_url: str, world: World, settings: Settings
) -> None:
    order = await world.order(http, recipient_name=f"Ada {SNEAKY}", occasion="mothers_day")
    title = f'Ada\'s "{SNEAKY}" song'
    token = await finish_song(world.pool, settings, order, title=title, lyrics=LYRICS)

    page = await browser.open(f"{base_url}/s/{token}", width=PHONE_WIDTH)
    await wait_for(lambda: audio_settled(page), timeout=15, what="the audio's metadata")
    audio = await page.evaluate(
        "(() => { const a = document.querySelector('audio');"
        " return {error: a.error && a.error.code, readyState: a.readyState,"
        " duration: a.duration, src: a.currentSrc}; })()"
    )
    dom = await page.evaluate(
        "({title: document.querySelector('h1').textContent,"
        " recipient: document.querySelector('.recipient').textContent,"
        " occasion: document.querySelector('.occasion').textContent,"
        " stanzas: [...document.querySelectorAll('.stanza')].map(p => p.innerText),"
        " sections: [...document.querySelectorAll('.lyrics h3')].map(h => h.textContent),"
        " scripts: document.scripts.length, pwned: window.pwned === true,"
        " viewport: !!document.querySelector('meta[name=viewport]'),"
        " scrollWidth: document.documentElement.scrollWidth,"
        " innerWidth: window.innerWidth})"
    )

    assert page.problems == []
    assert audio["error"] is None
    assert audio["readyState"] >= 1
    assert abs(audio["duration"] - 1.0) < 0.05
    assert f"/v1/share/{token}/audio?expires=" in audio["src"]
    assert dom["title"] == title
    assert dom["recipient"] == f"for Ada {SNEAKY}"
    assert dom["occasion"] == "Mother's Day"
    assert dom["sections"] == ["Verse 1", "Chorus"]
    assert dom["stanzas"] == [
        f"Ada wrote {SNEAKY} & more\nsecond line of the verse",
        "la la <b>la</b>\nsing it again",
    ]
    assert (dom["scripts"], dom["pwned"]) == (0, False)
    assert dom["viewport"]
    assert dom["innerWidth"] == PHONE_WIDTH
    assert dom["scrollWidth"] <= PHONE_WIDTH


async def test_the_waiting_and_missing_pages_render_cleanly_in_chromium(
    browser: Chromium, http: httpx.AsyncClient, base_url: str, world: World
) -> None:
    order = await world.order(http, variant_count=1)

    waiting = await browser.open(f"{base_url}/s/{order['variants'][0]['share_token']}")
    missing = await browser.open(f"{base_url}/s/{uuid.uuid4()}")
    waiting_text = await waiting.evaluate("document.body.innerText")
    missing_text = await missing.evaluate("document.body.innerText")
    widths = [
        await page.evaluate("document.documentElement.scrollWidth") for page in (waiting, missing)
    ]

    assert waiting.problems == []
    assert "still being written" in waiting_text
    assert "could not find this song" in missing_text
    # The 404 response itself is the only error Chromium reports about the missing page.
    assert all("404" in problem for problem in missing.problems), missing.problems
    assert max(widths) <= PHONE_WIDTH


# --- over HTTP -------------------------------------------------------------------------------


async def test_the_page_is_html_with_a_strict_content_security_policy(
    http: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    order = await world.order(http, variant_count=1)
    token = await finish_song(world.pool, settings, order, title="Song", lyrics="la")

    response = await http.get(f"/s/{token}")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )
    style = re.search(r"<style>(.*?)</style>", response.text, re.DOTALL)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert policy == {
        "default-src": "'none'",
        "style-src": f"'sha256-{digest}'",
        "img-src": "'self' data:",
        "media-src": "'self'",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
    }
    assert "<script" not in response.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in response.text


async def test_the_audio_on_the_page_is_the_signed_share_url(
    http: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    order = await world.order(http, variant_count=1)
    token = await finish_song(world.pool, settings, order, title="Song", lyrics="la")

    page = await http.get(f"/s/{token}")
    src = re.search(r'<audio[^>]* src="([^"]+)"', page.text)
    assert src is not None
    url = src.group(1).replace("&amp;", "&")
    audio = await http.get(url)

    assert url.startswith(f"/v1/share/{token}/audio?expires=")
    assert audio.status_code == 200
    assert audio.content == tiny_wav()


async def test_what_users_wrote_is_escaped(
    http: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    order = await world.order(http, recipient_name=f'"Ada" {SNEAKY}', variant_count=1)
    token = await finish_song(world.pool, settings, order, title=SNEAKY, lyrics=LYRICS)

    text = (await http.get(f"/s/{token}")).text

    assert "<script" not in text
    assert "<b>la</b>" not in text
    assert "&lt;script&gt;window.pwned = true&lt;/script&gt;" in text
    assert "&#34;Ada&#34;" in text  # Jinja's autoescape writes " as &#34;
    assert order["story"] not in text  # the story is the sender's, never shown


async def test_a_song_still_being_written_gets_a_page_that_refreshes(
    http: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(http, variant_count=2, occasion="valentines")
    await world.set_status(order["variants"][1]["id"], "generating")

    pending = await http.get(f"/s/{order['variants'][0]['share_token']}")
    generating = await http.get(f"/s/{order['variants'][1]['share_token']}")

    for response in (pending, generating):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert "This song is still being written" in response.text
        assert '<meta http-equiv="refresh" content="10">' in response.text
        assert "<audio" not in response.text
        assert "Valentine&#39;s Day" in response.text


async def test_a_failed_song_gets_a_page_that_says_so(
    http: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(http, variant_count=1)
    await world.fail(order["variants"][0]["id"])

    response = await http.get(f"/s/{order['variants'][0]['share_token']}")

    assert response.status_code == 200
    assert "This song could not be finished" in response.text
    assert "refresh" not in response.text
    assert "<audio" not in response.text
    assert "boom" not in response.text  # the error is for operators, not recipients


@pytest.mark.parametrize("token", [str(uuid.uuid4()), "not-a-token'; --", "%3Cscript%3E"])
async def test_an_unknown_or_malformed_link_gets_a_friendly_404_page(
    http: httpx.AsyncClient, token: str
) -> None:
    response = await http.get(f"/s/{token}")

    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "We could not find this song" in response.text
    assert "content-security-policy" in response.headers
    assert "<script" not in response.text
