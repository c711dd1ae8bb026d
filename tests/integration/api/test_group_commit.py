"""Group commit of the writes: orders that arrive together are written in one transaction, each
under its own caller (row-level security checks every row), each answered after that commit; a
group that fails is rolled back and each of its requests is then answered exactly as alone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import TYPE_CHECKING, Any

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.api.support import ORDER, bearer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg
    import httpx
    import pytest

    from tests.integration.api.support import World

_GROUP_LOG = "services.api.common.database"


async def _transactions_of(pool: asyncpg.Pool, order_ids: list[str]) -> set[str]:
    """The transactions that wrote these orders (each row's xmin)."""
    rows = await pool.fetch(
        "SELECT xmin::text AS xmin FROM orders WHERE id = ANY($1::uuid[])",
        [uuid.UUID(order_id) for order_id in order_ids],
    )
    assert len(rows) == len(order_ids)
    return {row["xmin"] for row in rows}


async def _own_orders(client: httpx.AsyncClient, user: uuid.UUID) -> list[dict[str, Any]]:
    page = await client.get("/v1/orders", headers=bearer(user))
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


async def _group_counts(client: httpx.AsyncClient, kind: str) -> tuple[float, float]:
    """The API's counts of committed groups of ``kind`` and of the writes they carried."""
    page = await client.get("/metrics")
    assert page.status_code == 200
    counts = {"serenade_api_group_commits": 0.0, "serenade_api_group_items": 0.0}
    for family in text_string_to_metric_families(page.text):
        for sample in family.samples:
            name = sample.name.removesuffix("_total")
            if name in counts and sample.labels.get("kind") == kind:
                counts[name] = sample.value
    return counts["serenade_api_group_commits"], counts["serenade_api_group_items"]


async def test_concurrent_orders_of_many_users_share_transactions_and_stay_their_own(
    client: httpx.AsyncClient, world: World
) -> None:
    users = [uuid.uuid4() for _ in range(16)]
    commits_before, items_before = await _group_counts(client, "create")

    answers = await asyncio.gather(
        *(
            client.post("/v1/orders", json=ORDER | {"recipient_name": f"R{n}"}, headers=bearer(u))
            for n, u in enumerate(users)
        )
    )

    assert [answer.status_code for answer in answers] == [201] * len(users)
    ids = [answer.json()["id"] for answer in answers]
    # Fewer transactions than orders: they were committed in groups, as the metrics say too.
    assert len(await _transactions_of(world.pool, ids)) < len(users) / 2
    commits_after, items_after = await _group_counts(client, "create")
    assert items_after - items_before == len(users)
    assert 1 <= commits_after - commits_before < len(users) / 2
    for n, (user, answer) in enumerate(zip(users, answers, strict=True)):
        body = answer.json()
        assert (body["recipient_name"], body["status"]) == (f"R{n}", "pending")
        assert [v["variant_number"] for v in body["variants"]] == [1, 2, 3]
        # Each user sees their own order, and only it.
        assert [order["id"] for order in await _own_orders(client, user)] == [body["id"]]
        assert (
            await world.pool.fetchval(
                "SELECT user_id FROM orders WHERE id = $1", uuid.UUID(body["id"])
            )
            == user
        )
        # Its events: orders.created and one request per variant, written once.
        assert len(await world.outbox(body["id"])) == 4


@contextlib.asynccontextmanager
async def _poison_refused_by_rls(pool: asyncpg.Pool) -> AsyncIterator[None]:
    """A row-level security policy that refuses an order for 'Poison' (dropped afterwards)."""
    await pool.execute(
        "CREATE POLICY test_no_poison ON orders AS RESTRICTIVE FOR INSERT TO authenticated"
        " WITH CHECK (recipient_name <> 'Poison')"
    )
    try:
        yield
    finally:
        await pool.execute("DROP POLICY test_no_poison ON orders")


async def test_a_request_refused_by_row_level_security_fails_its_group_but_not_the_others(
    client: httpx.AsyncClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    poisoner = uuid.uuid4()
    poison = ORDER | {"recipient_name": "Poison"}
    users = [uuid.uuid4() for _ in range(8)]
    async with _poison_refused_by_rls(world.pool):
        alone = await client.post("/v1/orders", json=poison, headers=bearer(poisoner))
        with caplog.at_level(logging.INFO, logger=_GROUP_LOG):
            answers = await asyncio.gather(
                *(client.post("/v1/orders", json=ORDER, headers=bearer(u)) for u in users[:4]),
                client.post("/v1/orders", json=poison, headers=bearer(poisoner)),
                *(client.post("/v1/orders", json=ORDER, headers=bearer(u)) for u in users[4:]),
            )

    # The group holding the poisoned order failed, and each of its requests went alone.
    assert any("failed, each goes alone" in record.getMessage() for record in caplog.records)
    bad = answers[4]
    good = answers[:4] + answers[5:]
    assert [answer.status_code for answer in good] == [201] * len(users)
    assert alone.status_code >= 400
    assert (bad.status_code, bad.json()["detail"]) == (alone.status_code, alone.json()["detail"])
    assert await world.order_count(poisoner) == 0
    for user, answer in zip(users, good, strict=True):
        assert [order["id"] for order in await _own_orders(client, user)] == [answer.json()["id"]]
        assert len(await world.outbox(answer.json()["id"])) == 4


async def test_a_key_replayed_with_another_body_in_a_group_is_409_and_the_others_are_made(
    client: httpx.AsyncClient, world: World
) -> None:
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = await client.post("/v1/orders", json=ORDER, headers=world.a | key)
    users = [uuid.uuid4() for _ in range(6)]

    answers = await asyncio.gather(
        *(client.post("/v1/orders", json=ORDER, headers=bearer(u)) for u in users[:3]),
        client.post("/v1/orders", json=ORDER | {"story": "Another"}, headers=world.a | key),
        *(client.post("/v1/orders", json=ORDER, headers=bearer(u)) for u in users[3:]),
    )

    conflict = answers[3]
    good = answers[:3] + answers[4:]
    assert first.status_code == 201
    assert conflict.status_code == 409
    assert "Idempotency-Key" in conflict.json()["detail"]
    assert [answer.status_code for answer in good] == [201] * len(users)
    assert await world.order_count(world.user_a) == 1
    for user, answer in zip(users, good, strict=True):
        assert [order["id"] for order in await _own_orders(client, user)] == [answer.json()["id"]]


async def test_one_key_twice_in_one_group_makes_one_order_and_replays_it(
    client: httpx.AsyncClient, world: World
) -> None:
    key = {"Idempotency-Key": f"twice-{uuid.uuid4()}"}
    others = [uuid.uuid4() for _ in range(6)]

    answers = await asyncio.gather(
        *(client.post("/v1/orders", json=ORDER, headers=bearer(u)) for u in others[:3]),
        client.post("/v1/orders", json=ORDER, headers=world.a | key),
        client.post("/v1/orders", json=ORDER, headers=world.a | key),
        *(client.post("/v1/orders", json=ORDER, headers=bearer(u)) for u in others[3:]),
    )

    pair = answers[3:5]
    assert sorted(answer.status_code for answer in pair) == [200, 201]
    replayed = next(answer for answer in pair if answer.status_code == 200)
    made = next(answer for answer in pair if answer.status_code == 201)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json() == made.json()
    assert await world.order_count(world.user_a) == 1
    assert len(await world.outbox(made.json()["id"])) == 4
    assert [answer.status_code for answer in answers[:3] + answers[5:]] == [201] * len(others)


async def _orders_of_new_users(
    client: httpx.AsyncClient, count: int, *, variant_count: int = 1
) -> list[tuple[uuid.UUID, dict[str, Any]]]:
    made = []
    for _ in range(count):
        user = uuid.uuid4()
        answer = await client.post(
            "/v1/orders", json=ORDER | {"variant_count": variant_count}, headers=bearer(user)
        )
        assert answer.status_code == 201, answer.text
        made.append((user, answer.json()))
    return made


async def _variant_transactions(pool: asyncpg.Pool, variant_ids: list[str]) -> set[str]:
    rows = await pool.fetch(
        "SELECT xmin::text AS xmin FROM song_variants WHERE id = ANY($1::uuid[])",
        [uuid.UUID(variant_id) for variant_id in variant_ids],
    )
    assert len(rows) == len(variant_ids)
    return {row["xmin"] for row in rows}


async def test_concurrent_upsells_share_transactions_and_a_refused_one_fails_only_itself(
    client: httpx.AsyncClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    orders = await _orders_of_new_users(client, 8)
    stranger = uuid.uuid4()  # may not upsell another's order: 404, as alone

    answers = await asyncio.gather(
        *(
            client.post(f"/v1/orders/{order['id']}/variants", headers=bearer(user))
            for user, order in orders
        )
    )
    refused_alone = await client.post(
        f"/v1/orders/{orders[0][1]['id']}/variants", headers=bearer(stranger)
    )
    with caplog.at_level(logging.INFO, logger=_GROUP_LOG):
        mixed = await asyncio.gather(
            *(
                client.post(f"/v1/orders/{order['id']}/variants", headers=bearer(user))
                for user, order in orders[:4]
            ),
            client.post(f"/v1/orders/{orders[0][1]['id']}/variants", headers=bearer(stranger)),
            *(
                client.post(f"/v1/orders/{order['id']}/variants", headers=bearer(user))
                for user, order in orders[4:]
            ),
        )

    assert any("failed, each goes alone" in record.getMessage() for record in caplog.records)
    assert [answer.status_code for answer in answers] == [201] * len(orders)
    assert [answer.json()["variant_number"] for answer in answers] == [2] * len(orders)
    assert len(await _variant_transactions(world.pool, [a.json()["id"] for a in answers])) < 4
    refused = mixed[4]
    assert refused_alone.status_code == 404
    assert (refused.status_code, refused.json()["detail"]) == (
        404,
        refused_alone.json()["detail"],
    )
    others = mixed[:4] + mixed[5:]
    assert [answer.status_code for answer in others] == [201] * len(orders)
    assert [answer.json()["variant_number"] for answer in others] == [3] * len(orders)
    for (_, order), first, second in zip(orders, answers, others, strict=True):
        requested = [
            e["variant_id"]
            for e in await world.outbox(order["id"])
            if e["type"] == "variants.requested" and e["reason"] == "upsell"
        ]
        assert requested == [first.json()["id"], second.json()["id"]]


async def test_a_refused_retry_fails_its_group_but_only_itself(
    client: httpx.AsyncClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    orders = await _orders_of_new_users(client, 8)
    for _, order in orders:
        await world.fail(order["variants"][0]["id"])
    pending_owner, pending = (await _orders_of_new_users(client, 1))[0]
    not_failed = pending["variants"][0]["id"]
    refused_alone = await client.post(
        f"/v1/variants/{not_failed}/retry", headers=bearer(pending_owner)
    )

    with caplog.at_level(logging.INFO, logger=_GROUP_LOG):
        answers = await asyncio.gather(
            *(
                client.post(f"/v1/variants/{order['variants'][0]['id']}/retry", headers=bearer(u))
                for u, order in orders[:4]
            ),
            client.post(f"/v1/variants/{not_failed}/retry", headers=bearer(pending_owner)),
            *(
                client.post(f"/v1/variants/{order['variants'][0]['id']}/retry", headers=bearer(u))
                for u, order in orders[4:]
            ),
        )

    assert any("failed, each goes alone" in record.getMessage() for record in caplog.records)
    refused = answers[4]
    retried = answers[:4] + answers[5:]
    assert refused_alone.status_code == 409
    assert (refused.status_code, refused.json()["detail"]) == (
        409,
        refused_alone.json()["detail"],
    )
    assert [answer.status_code for answer in retried] == [202] * len(orders)
    assert [answer.json()["status"] for answer in retried] == ["pending"] * len(orders)
    for _, order in orders:
        reasons = [e.get("reason") for e in await world.outbox(order["id"])]
        assert reasons.count("retry") == 1


async def test_retries_arriving_together_are_committed_together(
    client: httpx.AsyncClient, world: World
) -> None:
    orders = await _orders_of_new_users(client, 8)
    for _, order in orders:
        await world.fail(order["variants"][0]["id"])

    answers = await asyncio.gather(
        *(
            client.post(f"/v1/variants/{order['variants'][0]['id']}/retry", headers=bearer(u))
            for u, order in orders
        )
    )

    assert [answer.status_code for answer in answers] == [202] * len(orders)
    assert len(await _variant_transactions(world.pool, [a.json()["id"] for a in answers])) < 4
