"""Idempotency-Key: a retried create returns the first order; a different body is a conflict."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

from tests.integration.api.support import ORDER

if TYPE_CHECKING:
    import httpx

    from tests.integration.api.support import World


async def test_the_same_key_returns_the_first_order_with_the_replay_header(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = world.a | {"Idempotency-Key": "order-1"}

    first = await client.post("/v1/orders", json=ORDER, headers=headers)
    again = await client.post("/v1/orders", json=ORDER, headers=headers)

    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert await world.order_count(world.user_a) == 1
    assert len(await world.outbox(first.json()["id"])) == 4  # events written once


async def test_key_order_and_spelled_out_defaults_do_not_make_a_different_body(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = world.a | {"Idempotency-Key": "defaults"}
    short = {"genre": "pop", "recipient_name": "Ada", "occasion": "birthday"}
    spelled_out = {
        "recipient_name": "Ada",
        "occasion": "birthday",
        "genre": "pop",
        "mood": "heartfelt",
        "story": None,
        "occasion_date": None,
        "variant_count": 3,
    }

    first = await client.post("/v1/orders", json=short, headers=headers)
    again = await client.post("/v1/orders", json=spelled_out, headers=headers)

    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


async def test_the_same_key_with_another_body_is_409(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = world.a | {"Idempotency-Key": "order-2"}
    await client.post("/v1/orders", json=ORDER, headers=headers)

    other = await client.post(
        "/v1/orders", json=ORDER | {"recipient_name": "Someone else"}, headers=headers
    )

    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    assert "Idempotency-Key" in other.json()["detail"]
    assert await world.order_count(world.user_a) == 1


async def test_keys_belong_to_one_user(client: httpx.AsyncClient, world: World) -> None:
    mine = await client.post("/v1/orders", json=ORDER, headers=world.a | {"Idempotency-Key": "k"})
    theirs = await client.post("/v1/orders", json=ORDER, headers=world.b | {"Idempotency-Key": "k"})

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]


async def test_twenty_concurrent_requests_with_one_key_make_one_order(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = world.a | {"Idempotency-Key": f"race-{uuid.uuid4()}"}

    answers = await asyncio.gather(
        *(client.post("/v1/orders", json=ORDER, headers=headers) for _ in range(20))
    )

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * 19 + [201]
    assert len({answer.json()["id"] for answer in answers}) == 1
    assert await world.order_count(world.user_a) == 1
    assert len(await world.outbox(answers[0].json()["id"])) == 4


async def test_after_24_hours_a_key_makes_a_new_order(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = world.a | {"Idempotency-Key": "yesterday"}
    old = (await client.post("/v1/orders", json=ORDER, headers=headers)).json()
    await world.pool.execute(
        "UPDATE orders SET created_at = now() - interval '25 hours' WHERE id = $1",
        uuid.UUID(old["id"]),
    )

    new = await client.post(
        "/v1/orders", json=ORDER | {"recipient_name": "Another"}, headers=headers
    )
    again = await client.post(
        "/v1/orders", json=ORDER | {"recipient_name": "Another"}, headers=headers
    )

    assert new.status_code == 201
    assert new.json()["id"] != old["id"]
    assert again.status_code == 200
    assert again.json()["id"] == new.json()["id"]
    assert await world.order_count(world.user_a) == 2
