"""Variants over HTTP: retry of a failed variant, and the signed link to finished audio."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from tests.integration.api.support import World


async def test_retry_puts_a_failed_variant_back_to_pending_and_queues_it(
    client: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(client, variant_count=1)
    variant = order["variants"][0]
    await world.fail(variant["id"])
    await world.pool.execute(
        "UPDATE orders SET completion_announced_at = now() WHERE id = $1", uuid.UUID(order["id"])
    )

    response = await client.post(
        f"/v1/variants/{variant['id']}/retry", headers=world.a | {"X-Correlation-Id": "retry-1"}
    )

    assert response.status_code == 202
    retried = response.json()
    assert (retried["status"], retried["attempts"], retried["error"]) == ("pending", 0, None)
    events = [e for e in await world.outbox(order["id"]) if e["correlation_id"] == "retry-1"]
    assert [e["type"] for e in events] == ["variants.status", "variants.requested"]
    assert (events[0]["status"], events[0]["attempts"]) == ("pending", 0)
    assert events[0]["user_id"] == str(world.user_a)
    assert events[1]["reason"] == "retry"
    announced = await world.pool.fetchval(
        "SELECT completion_announced_at FROM orders WHERE id = $1", uuid.UUID(order["id"])
    )
    assert announced is None


async def test_service_role_may_retry_a_variant(
    client: httpx.AsyncClient, world: World, service_headers: dict[str, str]
) -> None:
    order = await world.order(client, variant_count=1)
    await world.fail(order["variants"][0]["id"])

    response = await client.post(
        f"/v1/variants/{order['variants'][0]['id']}/retry", headers=service_headers
    )

    assert response.status_code == 202


async def test_retry_is_409_unless_the_variant_failed(
    client: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(client, variant_count=3)
    pending, generating, complete = order["variants"]
    await world.set_status(generating["id"], "generating")
    await world.complete(complete)

    answers = [
        await client.post(f"/v1/variants/{variant['id']}/retry", headers=world.a)
        for variant in (pending, generating, complete)
    ]

    assert [a.status_code for a in answers] == [409] * 3
    assert "not failed" in answers[1].json()["detail"]


async def test_retry_of_an_unknown_variant_is_404(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(f"/v1/variants/{uuid.uuid4()}/retry", headers=world.a)
    assert response.status_code == 404


async def test_audio_link_of_a_complete_variant_is_signed_and_expires(
    client: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(client, variant_count=1)
    variant = order["variants"][0]
    key = await world.complete(variant)

    response = await client.get(f"/v1/variants/{variant['id']}/audio", headers=world.a)

    assert response.status_code == 200
    link = response.json()
    assert link["url"].startswith(f"/media/{key}?expires=")
    assert "signature=" in link["url"]
    expires = dt.datetime.fromisoformat(link["expires_at"])
    ttl = world.settings.signed_url_ttl
    left = (expires - dt.datetime.now(dt.UTC)).total_seconds()
    assert ttl - 5 <= left <= ttl + 1


async def test_audio_link_is_409_until_the_variant_is_complete(
    client: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(client, variant_count=1)

    response = await client.get(f"/v1/variants/{order['variants'][0]['id']}/audio", headers=world.a)

    assert response.status_code == 409
    assert "not complete" in response.json()["detail"]


async def test_audio_link_of_an_unknown_variant_is_404(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(f"/v1/variants/{uuid.uuid4()}/audio", headers=world.a)
    assert response.status_code == 404


async def test_order_status_follows_its_variants(client: httpx.AsyncClient, world: World) -> None:
    order = await world.order(client, variant_count=2)
    first, second = order["variants"]

    async def status() -> str:
        response = await client.get(f"/v1/orders/{order['id']}", headers=world.a)
        return str(response.json()["status"])

    assert await status() == "pending"
    await world.set_status(first["id"], "generating")
    assert await status() == "generating"
    await world.complete(first)
    assert await status() == "generating"
    await world.fail(second["id"])
    assert await status() == "failed"
    await world.complete(second)
    assert await status() == "complete"
