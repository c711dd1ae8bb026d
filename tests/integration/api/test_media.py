"""Signed audio URLs: served with the right type and byte ranges; refused when altered, expired
or pointed outside storage."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from services.api.common.signing import UrlSigner
from tests.cases.media import TRAVERSALS
from tests.integration.api.support import AUDIO, SECRET

if TYPE_CHECKING:
    from tests.integration.api.support import World


async def _signed_url(client: httpx.AsyncClient, world: World, *, ext: str = "mp3") -> str:
    order = await world.order(client, variant_count=1)
    await world.complete(order["variants"][0], ext=ext)
    response = await client.get(f"/v1/variants/{order['variants'][0]['id']}/audio", headers=world.a)
    return str(response.json()["url"])


async def _raw_get(client: httpx.AsyncClient, raw_path: str) -> httpx.Response:
    """GET with the path exactly as written: no dot-segment removal, no re-encoding."""
    url = httpx.URL("http://testserver", raw_path=raw_path.encode())
    return await client.send(httpx.Request("GET", url))


async def test_a_wav_file_is_served_as_audio_wav_not_mpeg(
    client: httpx.AsyncClient, world: World
) -> None:
    # The route is documented as audio/mpeg; the stored file's own type must win.
    response = await client.get(await _signed_url(client, world, ext="wav"))

    assert response.status_code == 200
    assert response.headers.get_list("content-type") == ["audio/wav"]


async def test_a_signed_url_serves_the_audio_with_its_content_type(
    client: httpx.AsyncClient, world: World
) -> None:
    url = await _signed_url(client, world)

    response = await client.get(url)

    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-length"] == str(len(AUDIO))
    assert response.content == AUDIO


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 100),
        ("bytes=100-", 100, len(AUDIO)),
        ("bytes=-50", len(AUDIO) - 50, len(AUDIO)),
        ("bytes=5000-999999", 5000, len(AUDIO)),
    ],
)
async def test_a_range_request_gets_206_with_those_bytes(
    client: httpx.AsyncClient, world: World, header: str, start: int, end: int
) -> None:
    url = await _signed_url(client, world)

    response = await client.get(url, headers={"Range": header})

    assert response.status_code == 206
    assert response.content == AUDIO[start:end]
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{len(AUDIO)}"
    assert response.headers["content-length"] == str(end - start)


async def test_a_range_past_the_end_is_416(client: httpx.AsyncClient, world: World) -> None:
    url = await _signed_url(client, world)

    response = await client.get(url, headers={"Range": f"bytes={len(AUDIO)}-"})

    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(AUDIO)}"


async def test_an_altered_signed_url_is_403(client: httpx.AsyncClient, world: World) -> None:
    url = await _signed_url(client, world)
    path, query = url.split("?")
    params = {key: values[0] for key, values in parse_qs(query).items()}
    later = str(int(params["expires"]) + 60)
    sig = params["signature"]
    other_sig = ("A" if sig[0] != "A" else "B") + sig[1:]
    other_path = path.replace("variant-1", "variant-2")

    altered = [
        f"{other_path}?expires={params['expires']}&signature={sig}",
        f"{path}?expires={later}&signature={sig}",
        f"{path}?expires={params['expires']}&signature={other_sig}",
        f"{path}?expires={params['expires']}",
        f"{path}?signature={sig}",
        path,
        f"{path}?expires=abc&signature={sig}",
    ]
    for candidate in altered:
        response = await client.get(candidate)
        assert response.status_code == 403, candidate
        assert response.headers["content-type"] == "application/problem+json"


async def test_an_expired_signed_url_is_403(client: httpx.AsyncClient, world: World) -> None:
    url = await _signed_url(client, world)
    path = urlsplit(url).path
    signer = UrlSigner(SECRET, ttl_seconds=1)
    expired = signer.sign_path(path, now=time.time() - 3600).url

    response = await client.get(expired)

    assert response.status_code == 403
    assert "expired" in response.json()["detail"]


@pytest.mark.parametrize("raw_path", TRAVERSALS)
async def test_traversal_without_a_valid_signature_is_403(
    client: httpx.AsyncClient, raw_path: str
) -> None:
    response = await _raw_get(client, f"{raw_path}?expires=9999999999&signature=abc")
    assert response.status_code in (403, 404)


@pytest.mark.parametrize("key", ["../../etc/passwd", "/etc/passwd", "a/./b.mp3", "a//b.mp3"])
async def test_a_validly_signed_path_outside_storage_is_still_refused(
    client: httpx.AsyncClient, key: str
) -> None:
    # Even a signature we made ourselves does not lead outside the storage root.
    signer = UrlSigner(SECRET, ttl_seconds=60)
    signed = signer.sign_path(f"/media/{key}")
    query = signed.url.split("?", 1)[1]

    response = await _raw_get(client, f"/media/{key}?{query}")

    assert response.status_code in (400, 403, 404)
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_validly_signed_key_that_is_not_one_of_ours_is_400(
    client: httpx.AsyncClient,
) -> None:
    signer = UrlSigner(SECRET, ttl_seconds=60)

    response = await client.get(signer.sign_path("/media/user/order/.env").url)

    assert response.status_code == 400
    assert "outside storage" in response.json()["detail"]


async def test_encoded_slashes_are_refused_even_with_a_valid_signature(
    client: httpx.AsyncClient, world: World
) -> None:
    url = await _signed_url(client, world)
    path, query = url.split("?")
    encoded = path.replace("/", "%2F").replace("%2Fmedia%2F", "/media/", 1)

    response = await _raw_get(client, f"{encoded}?{query}")

    assert response.status_code == 400


async def test_a_signed_url_for_missing_audio_is_404(client: httpx.AsyncClient) -> None:
    signer = UrlSigner(SECRET, ttl_seconds=60)

    response = await client.get(signer.sign_path("/media/nobody/nothing/variant-1.mp3").url)

    assert response.status_code == 404


async def test_signed_urls_are_absolute_when_a_public_base_is_set() -> None:
    signer = UrlSigner(SECRET, ttl_seconds=60, public_url="https://songs.example/")
    assert signer.sign_path("/media/a/b.mp3").url.startswith("https://songs.example/media/a/b.mp3?")
