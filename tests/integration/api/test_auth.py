"""Bearer tokens and roles: only acceptable HS256 tokens get in, each role only where it may."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import jwt
import pytest

from shared.auth import issue_token
from shared.db import Role
from tests.cases.tokens import BAD_TOKENS, SECRET, claims
from tests.integration.api.support import ORDER

if TYPE_CHECKING:
    import httpx

    from tests.integration.api.support import World


@pytest.mark.parametrize("token", list(BAD_TOKENS.values()), ids=list(BAD_TOKENS))
async def test_unacceptable_tokens_are_401_never_500(client: httpx.AsyncClient, token: str) -> None:
    response = await client.get("/v1/orders", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Basic dXNlcjpwdw==", "Token abc", "Bearer", "bearer "])
async def test_malformed_authorization_headers_are_401(
    client: httpx.AsyncClient, header: str
) -> None:
    response = await client.get("/v1/orders", headers={"Authorization": header})
    assert response.status_code == 401


async def test_the_bearer_scheme_is_matched_case_insensitively(
    client: httpx.AsyncClient, world: World
) -> None:
    token = world.a["Authorization"].split()[1]
    for scheme in ("bearer", "BEARER", "BeArEr"):
        response = await client.get("/v1/orders", headers={"Authorization": f"{scheme} {token}"})
        assert response.status_code == 200


async def test_anonymous_callers_get_401_on_every_orders_and_variants_endpoint(
    client: httpx.AsyncClient,
) -> None:
    some = uuid.uuid4()
    anon_token = {"Authorization": f"Bearer {jwt.encode(claims(role='anon', aud=None), SECRET)}"}
    for headers in ({}, anon_token):
        answers = [
            await client.post("/v1/orders", json=ORDER, headers=headers),
            await client.get("/v1/orders", headers=headers),
            await client.get(f"/v1/orders/{some}", headers=headers),
            await client.post(f"/v1/orders/{some}/variants", headers=headers),
            await client.post(f"/v1/variants/{some}/retry", headers=headers),
            await client.get(f"/v1/variants/{some}/audio", headers=headers),
            await client.get("/v1/admin/failed-jobs", headers=headers),
        ]
        assert [a.status_code for a in answers] == [401] * len(answers)
        # An anon key was sent: the answer says what is wrong with it, not that none was sent.
        said = "the token's role is anon" if headers else "a bearer token is required"
        assert {a.json()["detail"].split(":")[0] for a in answers} == {said}
        assert "authenticated" in answers[0].json()["detail"]


async def test_users_get_403_on_admin_endpoints(client: httpx.AsyncClient, world: World) -> None:
    some = uuid.uuid4()
    answers = [
        await client.get("/v1/admin/failed-jobs", headers=world.a),
        await client.get(f"/v1/admin/failed-jobs/{some}", headers=world.a),
        await client.post(f"/v1/admin/failed-jobs/{some}/replay", headers=world.a),
    ]
    assert [a.status_code for a in answers] == [403] * 3
    assert all(a.headers["content-type"] == "application/problem+json" for a in answers)


async def test_service_role_gets_403_on_owner_only_endpoints(
    client: httpx.AsyncClient, world: World, service_headers: dict[str, str]
) -> None:
    order = await world.order(client)
    variant = order["variants"][0]
    answers = [
        await client.post("/v1/orders", json=ORDER, headers=service_headers),
        await client.get("/v1/orders", headers=service_headers),
        await client.post(f"/v1/orders/{order['id']}/variants", headers=service_headers),
        await client.get(f"/v1/variants/{variant['id']}/audio", headers=service_headers),
    ]
    assert [a.status_code for a in answers] == [403] * 4


async def test_service_role_token_needs_no_audience(
    client: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(client)
    token = issue_token(SECRET, role=Role.SERVICE)

    response = await client.get(
        f"/v1/orders/{order['id']}", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 200


async def test_a_token_for_a_user_reaches_only_that_users_orders(
    client: httpx.AsyncClient, world: World
) -> None:
    await world.order(client)
    await world.order(client)
    other = await client.post("/v1/orders", json=ORDER, headers=world.b)

    mine = (await client.get("/v1/orders", headers=world.a)).json()["items"]

    assert len(mine) == 2
    assert other.json()["id"] not in {item["id"] for item in mine}
    assert {item["user_id"] for item in mine} == {str(world.user_a)}
