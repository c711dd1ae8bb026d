"""Bad requests: every one is a 4xx problem details that names what is wrong, and none of them
leaves an order behind."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.api.support import ORDER

if TYPE_CHECKING:
    import httpx

    from tests.integration.api.support import World

# (what is wrong, body, the field the problem must name)
BAD_BODIES: list[tuple[str, Any, str]] = [
    (
        "recipient_name missing",
        {k: v for k, v in ORDER.items() if k != "recipient_name"},
        "recipient_name",
    ),
    ("occasion missing", {k: v for k, v in ORDER.items() if k != "occasion"}, "occasion"),
    ("genre missing", {k: v for k, v in ORDER.items() if k != "genre"}, "genre"),
    ("recipient_name empty", ORDER | {"recipient_name": ""}, "recipient_name"),
    ("recipient_name blank", ORDER | {"recipient_name": "   \t"}, "recipient_name"),
    ("recipient_name too long", ORDER | {"recipient_name": "x" * 101}, "recipient_name"),
    ("recipient_name a number", ORDER | {"recipient_name": 42}, "recipient_name"),
    ("recipient_name null", ORDER | {"recipient_name": None}, "recipient_name"),
    ("occasion unknown", ORDER | {"occasion": "funeral"}, "occasion"),
    ("genre unknown", ORDER | {"genre": "polka"}, "genre"),
    ("mood unknown", ORDER | {"mood": "grumpy"}, "mood"),
    ("recipient_name with NUL", ORDER | {"recipient_name": "A\x00da"}, "recipient_name"),
    ("story too long", ORDER | {"story": "s" * 2001}, "story"),
    ("story with NUL", ORDER | {"story": "a\x00"}, "story"),
    ("story a list", ORDER | {"story": ["a"]}, "story"),
    ("variant_count zero", ORDER | {"variant_count": 0}, "variant_count"),
    ("variant_count six", ORDER | {"variant_count": 6}, "variant_count"),
    ("variant_count a string", ORDER | {"variant_count": "3"}, "variant_count"),
    ("variant_count a float", ORDER | {"variant_count": 2.5}, "variant_count"),
    ("variant_count a bool", ORDER | {"variant_count": True}, "variant_count"),
    ("occasion_date impossible", ORDER | {"occasion_date": "2025-02-30"}, "occasion_date"),
    ("occasion_date month 13", ORDER | {"occasion_date": "2025-13-01"}, "occasion_date"),
    (
        "occasion_date a timestamp",
        ORDER | {"occasion_date": "2025-02-03T10:00:00"},
        "occasion_date",
    ),
    ("occasion_date a number", ORDER | {"occasion_date": 1700000000}, "occasion_date"),
    ("occasion_date other format", ORDER | {"occasion_date": "03/14/2025"}, "occasion_date"),
    ("unknown field", ORDER | {"price": 0}, "price"),
    ("user_id smuggled in", ORDER | {"user_id": "00000000-0000-0000-0000-000000000000"}, "user_id"),
]


@pytest.mark.parametrize(("why", "body", "field"), BAD_BODIES, ids=[case[0] for case in BAD_BODIES])
async def test_invalid_order_bodies_are_refused_naming_the_field(
    client: httpx.AsyncClient, world: World, why: str, body: Any, field: str
) -> None:
    response = await client.post("/v1/orders", json=body, headers=world.a)

    assert response.status_code in (400, 422), why
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == response.status_code
    assert field in problem["detail"]
    assert field in [error["field"] for error in problem["errors"]]
    assert await world.order_count(world.user_a) == 0


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", b"[]", b'"a string"', b"null", b"\xff\xfe garbage"],
    ids=["broken", "empty", "array", "string", "null", "binary"],
)
async def test_a_body_that_is_not_an_order_object_is_400(
    client: httpx.AsyncClient, world: World, content: bytes
) -> None:
    response = await client.post(
        "/v1/orders",
        content=content,
        headers=world.a | {"Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"]
    assert await world.order_count(world.user_a) == 0


async def test_a_body_of_several_megabytes_is_413(client: httpx.AsyncClient, world: World) -> None:
    huge = ORDER | {"story": "x" * (5 * 1024 * 1024)}

    response = await client.post("/v1/orders", json=huge, headers=world.a)

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert await world.order_count(world.user_a) == 0


async def test_idempotency_key_longer_than_255_is_400(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        "/v1/orders", json=ORDER, headers=world.a | {"Idempotency-Key": "k" * 256}
    )

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["detail"]
    assert await world.order_count(world.user_a) == 0


async def test_an_unknown_route_and_a_wrong_method_are_problem_details(
    client: httpx.AsyncClient, world: World
) -> None:
    missing = await client.get("/v1/nothing-here", headers=world.a)
    wrong_method = await client.delete("/v1/orders", headers=world.a)

    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == "application/problem+json"
