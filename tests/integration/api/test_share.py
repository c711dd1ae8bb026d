"""Share links: anyone with the token sees one variant and its audio, nothing about the owner."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tests.integration.api.support import AUDIO

if TYPE_CHECKING:
    import httpx

    from tests.integration.api.support import World

SHARE_FIELDS = {
    "variant_number",
    "status",
    "title",
    "lyrics",
    "duration_seconds",
    "recipient_name",
    "occasion",
    "audio_url",
    "expires_at",
}


async def test_a_share_link_shows_one_variant_and_nothing_about_its_owner(
    client: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(client)
    variant = order["variants"][1]
    await world.complete(variant)

    response = await client.get(f"/v1/share/{variant['share_token']}")

    assert response.status_code == 200
    shared = response.json()
    assert set(shared) == SHARE_FIELDS
    assert (shared["variant_number"], shared["status"], shared["title"]) == (
        2,
        "complete",
        "A Song",
    )
    assert (shared["recipient_name"], shared["occasion"]) == ("Ada", "birthday")
    text = response.text
    for secret in (str(world.user_a), order["id"], order["story"], variant["id"]):
        assert secret not in text
    assert shared["audio_url"].startswith(f"/v1/share/{variant['share_token']}/audio?expires=")


async def test_audio_url_is_null_until_the_variant_is_complete(
    client: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(client)

    shared = (await client.get(f"/v1/share/{order['variants'][0]['share_token']}")).json()

    assert shared["status"] == "pending"
    assert shared["audio_url"] is None
    assert shared["expires_at"] is None


async def test_the_share_audio_url_serves_the_audio_with_ranges(
    client: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(client, variant_count=1)
    variant = order["variants"][0]
    await world.complete(variant)
    url = (await client.get(f"/v1/share/{variant['share_token']}")).json()["audio_url"]

    whole = await client.get(url)
    part = await client.get(url, headers={"Range": "bytes=10-19"})

    assert whole.status_code == 200
    assert whole.headers["content-type"] == "audio/mpeg"
    assert whole.content == AUDIO
    assert part.status_code == 206
    assert part.content == AUDIO[10:20]


async def test_a_share_audio_url_is_bound_to_its_token(
    client: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(client, variant_count=2)
    first, second = order["variants"]
    await world.complete(first)
    await world.complete(second)
    url = (await client.get(f"/v1/share/{first['share_token']}")).json()["audio_url"]

    moved = await client.get(url.replace(first["share_token"], second["share_token"]))
    unsigned = await client.get(f"/v1/share/{first['share_token']}/audio")

    assert moved.status_code == 403
    assert unsigned.status_code == 403


async def test_an_unknown_or_malformed_share_token_is_404(client: httpx.AsyncClient) -> None:
    unknown = await client.get(f"/v1/share/{uuid.uuid4()}")
    malformed = await client.get("/v1/share/not-a-token'; --")

    assert unknown.status_code == 404
    assert malformed.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"


async def test_a_bad_bearer_token_does_not_matter_to_a_share_link(
    client: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(client)

    response = await client.get(
        f"/v1/share/{order['variants'][0]['share_token']}",
        headers={"Authorization": "Bearer nonsense"},
    )

    assert response.status_code == 200
