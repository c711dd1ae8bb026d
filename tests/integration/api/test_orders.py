"""Orders over HTTP: create, read, list in pages, upsell; and who may see what."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import TYPE_CHECKING

from tests.integration.api.support import ORDER

if TYPE_CHECKING:
    import httpx

    from tests.integration.api.support import World


async def test_creating_an_order_returns_it_with_pending_variants(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post("/v1/orders", json=ORDER, headers=world.a)

    assert response.status_code == 201
    order = response.json()
    assert order["user_id"] == str(world.user_a)
    assert order["status"] == "pending"
    assert [v["variant_number"] for v in order["variants"]] == [1, 2, 3]
    assert {v["status"] for v in order["variants"]} == {"pending"}
    assert all(v["attempts"] == 0 and v["order_id"] == order["id"] for v in order["variants"])
    for field in ("recipient_name", "occasion", "occasion_date", "genre", "mood", "story"):
        assert order[field] == ORDER[field]
    created = dt.datetime.fromisoformat(order["created_at"])
    assert created.tzinfo is not None
    assert abs(dt.datetime.now(dt.UTC) - created) < dt.timedelta(minutes=1)


async def test_defaults_mood_heartfelt_story_null_three_variants(
    client: httpx.AsyncClient, world: World
) -> None:
    body = {"recipient_name": "Bo", "occasion": "wedding", "genre": "jazz"}

    order = (await client.post("/v1/orders", json=body, headers=world.a)).json()

    assert order["mood"] == "heartfelt"
    assert order["story"] is None
    assert order["occasion_date"] is None
    assert len(order["variants"]) == 3


async def test_variant_count_sets_how_many_variants_are_made(
    client: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(client, variant_count=5)
    assert [v["variant_number"] for v in order["variants"]] == [1, 2, 3, 4, 5]


async def test_creating_an_order_writes_its_events_to_the_outbox(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        "/v1/orders", json=ORDER, headers=world.a | {"X-Correlation-Id": "req-42"}
    )
    order = response.json()

    events = await world.outbox(order["id"])

    assert response.headers["X-Correlation-Id"] == "req-42"
    assert [e["type"] for e in events] == ["orders.created"] + ["variants.requested"] * 3
    assert events[0]["variant_ids"] == [v["id"] for v in order["variants"]]
    assert {e["reason"] for e in events[1:]} == {"created"}
    assert {e["correlation_id"] for e in events} == {"req-42"}
    assert len({e["event_id"] for e in events}) == 4


async def test_owner_and_service_role_read_an_order(
    client: httpx.AsyncClient, world: World, service_headers: dict[str, str]
) -> None:
    order = await world.order(client)

    as_owner = await client.get(f"/v1/orders/{order['id']}", headers=world.a)
    as_service = await client.get(f"/v1/orders/{order['id']}", headers=service_headers)

    assert as_owner.status_code == 200
    assert as_owner.json() == order
    assert as_service.status_code == 200
    assert as_service.json()["id"] == order["id"]


async def test_another_user_gets_404_for_every_endpoint_on_my_order(
    client: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(client)
    variant = order["variants"][0]
    await world.fail(variant["id"])

    answers = [
        await client.get(f"/v1/orders/{order['id']}", headers=world.b),
        await client.post(f"/v1/orders/{order['id']}/variants", headers=world.b),
        await client.post(f"/v1/variants/{variant['id']}/retry", headers=world.b),
        await client.get(f"/v1/variants/{variant['id']}/audio", headers=world.b),
    ]

    assert [a.status_code for a in answers] == [404] * 4
    assert all(a.headers["content-type"] == "application/problem+json" for a in answers)
    listing = await client.get("/v1/orders", headers=world.b)
    assert listing.json() == {"items": [], "next_cursor": None}


async def test_unknown_order_is_404_and_a_malformed_id_is_400(
    client: httpx.AsyncClient, world: World
) -> None:
    missing = await client.get(f"/v1/orders/{uuid.uuid4()}", headers=world.a)
    malformed = await client.get("/v1/orders/not-a-uuid", headers=world.a)

    assert missing.status_code == 404
    assert missing.json()["detail"] == "no such order"
    assert malformed.status_code in (400, 404)


async def test_listing_pages_through_my_orders_newest_first(
    client: httpx.AsyncClient, world: World
) -> None:
    made = [(await world.order(client, recipient_name=f"R{i}"))["id"] for i in range(5)]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/orders", params=params, headers=world.a)).json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == list(reversed(made))
    assert pages == 3


async def test_listed_orders_carry_their_variants_and_status(
    client: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(client, variant_count=2)
    await world.set_status(order["variants"][0]["id"], "generating")

    page = (await client.get("/v1/orders", headers=world.a)).json()

    assert page["items"][0]["id"] == order["id"]
    assert page["items"][0]["status"] == "generating"
    assert len(page["items"][0]["variants"]) == 2


async def test_a_tampered_or_foreign_cursor_is_400(
    client: httpx.AsyncClient, world: World, service_headers: dict[str, str]
) -> None:
    for i in range(3):
        await world.order(client, recipient_name=f"C{i}")
    cursor = (await client.get("/v1/orders?limit=1", headers=world.a)).json()["next_cursor"]
    body, _, signature = cursor.partition(".")
    flipped = ("A" if body[0] != "A" else "B") + body[1:]
    await world.failed_job(None)
    admin_cursor = (
        await client.get("/v1/admin/failed-jobs?limit=1", headers=service_headers)
    ).json()["next_cursor"]

    for bad in (f"{flipped}.{signature}", f"{body}.{signature[:-2]}", "garbage", "", admin_cursor):
        response = await client.get("/v1/orders", params={"cursor": bad}, headers=world.a)
        assert response.status_code == 400, bad
        assert response.headers["content-type"] == "application/problem+json"


async def test_limit_outside_1_to_100_is_400(client: httpx.AsyncClient, world: World) -> None:
    for limit in ("0", "101", "x"):
        response = await client.get("/v1/orders", params={"limit": limit}, headers=world.a)
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == "limit"


async def test_upsell_adds_the_next_variant_until_five(
    client: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(client, variant_count=3)

    fourth = await client.post(f"/v1/orders/{order['id']}/variants", headers=world.a)
    fifth = await client.post(f"/v1/orders/{order['id']}/variants", headers=world.a)
    sixth = await client.post(f"/v1/orders/{order['id']}/variants", headers=world.a)

    assert (fourth.status_code, fifth.status_code, sixth.status_code) == (201, 201, 409)
    assert fourth.json()["variant_number"] == 4
    assert fifth.json()["status"] == "pending"
    assert "5 variants" in sixth.json()["detail"]
    requested = [e for e in await world.outbox(order["id"]) if e["type"] == "variants.requested"]
    assert [e["reason"] for e in requested] == ["created"] * 3 + ["upsell"] * 2


async def test_upsell_re_arms_a_finished_order(client: httpx.AsyncClient, world: World) -> None:
    order = await world.order(client, variant_count=1)
    await world.complete(order["variants"][0])
    await world.pool.execute(
        "UPDATE orders SET completion_announced_at = now() WHERE id = $1", uuid.UUID(order["id"])
    )

    await client.post(f"/v1/orders/{order['id']}/variants", headers=world.a)

    announced = await world.pool.fetchval(
        "SELECT completion_announced_at FROM orders WHERE id = $1", uuid.UUID(order["id"])
    )
    assert announced is None
    assert (await client.get(f"/v1/orders/{order['id']}", headers=world.a)).json()[
        "status"
    ] == "generating"


async def test_two_upsells_at_once_make_two_distinct_variants(
    client: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(client, variant_count=3)
    url = f"/v1/orders/{order['id']}/variants"

    first, second = await asyncio.gather(
        client.post(url, headers=world.a), client.post(url, headers=world.a)
    )

    assert sorted([first.json()["variant_number"], second.json()["variant_number"]]) == [4, 5]
