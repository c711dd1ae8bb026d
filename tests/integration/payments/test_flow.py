"""Cancel, expiry, upsell, retry and refunds with payments on: nothing is generated that was
not paid for, and money is never kept for nothing."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from shared.auth import issue_token
from shared.db import Role
from shared.lifecycle import fail_variant, start_attempt, start_attempts
from tests.integration.api.support import SECRET
from tests.integration.payments.support import (
    checkout_completed,
    outbox_events,
    payment_row,
    post_event,
)

if TYPE_CHECKING:
    import asyncpg
    import httpx

    from services.api.payments.worker import PaymentsWorker
    from tests.integration.api.support import World

REQUESTED = "serenade.variants.requested"
SERVICE = {"Authorization": f"Bearer {issue_token(SECRET, role=Role.SERVICE)}"}


async def _pay(client: httpx.AsyncClient, payment: dict[str, Any]) -> None:
    response = await post_event(client, checkout_completed(payment))
    assert response.json()["outcome"] == "paid", response.text


async def _pay_late(client: httpx.AsyncClient, payment: dict[str, Any]) -> None:
    response = await post_event(client, checkout_completed(payment))
    assert response.json()["outcome"] == "refund_pending", response.text


async def _order(client: httpx.AsyncClient, shop: World, order_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/orders/{order_id}", headers=shop.a)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_cancelling_an_unpaid_order_fails_its_variants_and_announces_it(
    paid: httpx.AsyncClient, shop: World, pool: asyncpg.Pool
) -> None:
    order = await shop.order(paid)
    assert (await paid.delete(f"/v1/orders/{order['id']}", headers=shop.b)).status_code == 404
    response = await paid.delete(f"/v1/orders/{order['id']}", headers=shop.a)
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["payment"]["status"] == "cancelled"
    assert {(v["status"], v["error"]) for v in cancelled["variants"]} == {("failed", "cancelled")}
    [announced] = await outbox_events(pool, order["id"], "serenade.orders.cancelled")
    assert announced["reason"] == "cancelled"
    assert await outbox_events(pool, order["id"], "serenade.orders.completed") == []
    # Cancelled twice: 409, nothing more happens.
    assert (await paid.delete(f"/v1/orders/{order['id']}", headers=shop.a)).status_code == 409
    # A failed variant of an unpaid order is not retried by anyone.
    variant = cancelled["variants"][0]["id"]
    retry = await paid.post(f"/v1/variants/{variant}/retry", headers=shop.a)
    assert retry.status_code == 409
    assert await outbox_events(pool, order["id"], REQUESTED) == []


async def test_a_paid_order_cannot_be_cancelled(paid: httpx.AsyncClient, shop: World) -> None:
    order = await shop.order(paid)
    await _pay(paid, order["payment"])
    response = await paid.delete(f"/v1/orders/{order['id']}", headers=shop.a)
    assert response.status_code == 409
    assert (await _order(paid, shop, order["id"]))["payment"]["status"] == "paid"


async def test_money_for_a_cancelled_order_is_refunded_at_once(
    paid: httpx.AsyncClient, shop: World, pool: asyncpg.Pool, worker: PaymentsWorker
) -> None:
    order = await shop.order(paid)
    assert (await paid.delete(f"/v1/orders/{order['id']}", headers=shop.a)).status_code == 200
    await _pay_late(paid, order["payment"])  # the customer paid in another tab meanwhile
    row = await payment_row(pool, order["payment"]["id"])
    assert row["status"] == "refund_pending"
    assert row["paid_at"] is None
    await worker.settle_due_refunds()
    shown = await _order(paid, shop, order["id"])
    assert shown["status"] == "cancelled"
    assert shown["payment"]["status"] == "refunded"
    assert await outbox_events(pool, order["id"], REQUESTED) == []
    assert len(await outbox_events(pool, order["id"], "serenade.payments.refunded")) == 1


async def test_an_unpaid_order_expires_by_itself_once(
    paid: httpx.AsyncClient, shop: World, pool: asyncpg.Pool, worker: PaymentsWorker
) -> None:
    order = await shop.order(paid)
    payment_id = uuid.UUID(order["payment"]["id"])
    await pool.execute(
        "UPDATE payments SET expires_at = now() - interval '1 second' WHERE id = $1", payment_id
    )
    await worker.expire_due()
    await worker.expire_due()  # a second round (or another process) finds nothing to do
    shown = await _order(paid, shop, order["id"])
    assert shown["status"] == "cancelled"
    assert shown["payment"]["status"] == "expired"
    assert {v["error"] for v in shown["variants"]} == {"expired"}
    [announced] = await outbox_events(pool, order["id"], "serenade.orders.cancelled")
    assert announced["reason"] == "expired"
    # Paid after it expired: refunded at once by the worker (the local refund settles at once).
    await post_event(paid, checkout_completed(order["payment"]))
    assert (await payment_row(pool, order["payment"]["id"]))["status"] == "refund_pending"
    await worker.settle_due_refunds()
    assert (await payment_row(pool, order["payment"]["id"]))["status"] == "refunded"
    assert len(await outbox_events(pool, order["id"], "serenade.payments.refunded")) == 1
    assert await outbox_events(pool, order["id"], REQUESTED) == []


async def test_an_upsell_waits_for_a_paid_order_and_for_its_own_payment(
    paid: httpx.AsyncClient, shop: World, pool: asyncpg.Pool
) -> None:
    order = await shop.order(paid)
    upsell = f"/v1/orders/{order['id']}/variants"
    assert (await paid.post(upsell, headers=shop.a)).status_code == 409  # not paid yet
    await _pay(paid, order["payment"])
    response = await paid.post(upsell, headers=shop.a)
    assert response.status_code == 201, response.text
    variant = response.json()
    assert variant["status"] == "pending"
    assert variant["variant_number"] == 4
    payment = variant["payment"]
    assert (payment["kind"], payment["status"], payment["amount"]) == ("upsell", "awaiting", 900)
    assert payment["checkout_url"] == f"/pay/{payment['id']}"
    # Another upsell while this one awaits payment: 409.
    assert (await paid.post(upsell, headers=shop.a)).status_code == 409
    requested = await outbox_events(pool, order["id"], REQUESTED)
    assert variant["id"] not in {e["variant_id"] for e in requested}
    await _pay(paid, payment)
    requested = await outbox_events(pool, order["id"], REQUESTED)
    [queued] = [e for e in requested if e["variant_id"] == variant["id"]]
    assert queued["reason"] == "upsell"
    shown = await _order(paid, shop, order["id"])
    assert [p["kind"] for p in shown["payments"]] == ["order", "upsell"]
    assert shown["variants"][3]["payment"]["status"] == "paid"


async def test_a_lapsed_upsell_fails_only_its_variant(
    paid: httpx.AsyncClient, shop: World, pool: asyncpg.Pool, worker: PaymentsWorker
) -> None:
    order = await shop.order(paid, variant_count=1)
    await _pay(paid, order["payment"])
    await shop.complete(order["variants"][0])
    variant = (await paid.post(f"/v1/orders/{order['id']}/variants", headers=shop.a)).json()
    await pool.execute(
        "UPDATE payments SET expires_at = now() WHERE id = $1",
        uuid.UUID(variant["payment"]["id"]),
    )
    await worker.expire_due()
    shown = await _order(paid, shop, order["id"])
    assert shown["status"] == "complete"  # the lapsed upsell does not count
    assert shown["payment"]["status"] == "paid"
    assert (shown["variants"][1]["status"], shown["variants"][1]["error"]) == ("failed", "expired")
    assert await outbox_events(pool, order["id"], "serenade.orders.cancelled") == []


async def test_an_order_whose_paid_variants_all_failed_is_refunded_by_itself(
    paid: httpx.AsyncClient, shop: World, pool: asyncpg.Pool, worker: PaymentsWorker
) -> None:
    order = await shop.order(paid, variant_count=2)
    await _pay(paid, order["payment"])
    async with pool.acquire() as conn, conn.transaction():
        for variant in order["variants"]:
            await fail_variant(
                conn, uuid.UUID(variant["id"]), uuid.UUID(order["user_id"]), error="boom"
            )
    assert (await payment_row(pool, order["payment"]["id"]))["status"] == "refund_pending"
    # Retry and the admin replay are refused once the money is going back.
    variant_id = order["variants"][0]["id"]
    assert (await paid.post(f"/v1/variants/{variant_id}/retry", headers=shop.a)).status_code == 409
    await worker.settle_due_refunds()
    shown = await _order(paid, shop, order["id"])
    assert shown["payment"]["status"] == "refunded"
    [refunded] = await outbox_events(pool, order["id"], "serenade.payments.refunded")
    assert refunded["amount"] == 2900


async def test_one_complete_variant_keeps_the_payment(
    paid: httpx.AsyncClient, shop: World, pool: asyncpg.Pool
) -> None:
    order = await shop.order(paid, variant_count=2)
    await _pay(paid, order["payment"])
    await shop.complete(order["variants"][0])
    async with pool.acquire() as conn, conn.transaction():
        await fail_variant(
            conn,
            uuid.UUID(order["variants"][1]["id"]),
            uuid.UUID(order["user_id"]),
            error="boom",
        )
    assert (await payment_row(pool, order["payment"]["id"]))["status"] == "paid"


async def test_the_local_checkout_page_shows_the_amount_and_pays(
    paid: httpx.AsyncClient, shop: World, pool: asyncpg.Pool
) -> None:
    order = await shop.order(paid)
    url = order["payment"]["checkout_url"]
    page = await paid.get(url)
    assert page.status_code == 200
    assert "29.00 EUR" in page.text
    assert "3 song variants for Ada" in page.text
    paid_now = await paid.post(url)
    assert paid_now.status_code == 303
    after = await paid.get(url)
    assert 'data-status="paid"' in after.text
    assert len(await outbox_events(pool, order["id"], REQUESTED)) == 3
    assert (await paid.post(url)).status_code == 409
    assert (await paid.get(f"/pay/{uuid.uuid4()}")).status_code == 404


async def test_a_payment_row_is_not_written_by_its_owner(
    paid: httpx.AsyncClient, shop: World, pool: asyncpg.Pool
) -> None:
    # Amounts and status never come from the client: an order body naming them is refused.
    response = await paid.post(
        "/v1/orders",
        json={"recipient_name": "Ada", "occasion": "birthday", "genre": "pop", "amount": 1},
        headers=shop.a,
    )
    assert response.status_code in (400, 422)
    assert response.json()["errors"]


async def test_stripe_checkouts_return_to_a_page_of_the_api(paid: httpx.AsyncClient) -> None:
    thanks = await paid.get("/pay/done?outcome=paid")
    assert thanks.status_code == 200
    assert "Thank you" in thanks.text
    back = await paid.get("/pay/done?outcome=cancelled")
    assert "Nothing was charged" in back.text


async def test_the_generator_never_claims_a_variant_that_is_not_paid(
    paid: httpx.AsyncClient, shop: World, pool: asyncpg.Pool
) -> None:
    # A forged or stale request for an unpaid variant: the claim finds nothing to start.
    order = await shop.order(paid)
    variant_ids = [uuid.UUID(v["id"]) for v in order["variants"]]
    async with pool.acquire() as conn, conn.transaction():
        assert await start_attempt(conn, variant_ids[0], uuid.UUID(order["user_id"])) is None
        claimed = await start_attempts(
            conn, variant_ids, redelivered=[], max_attempts=3, correlation_ids={}
        )
    assert claimed == {}
    await _pay(paid, order["payment"])
    async with pool.acquire() as conn, conn.transaction():
        claimed = await start_attempts(
            conn, variant_ids, redelivered=[], max_attempts=3, correlation_ids={}
        )
    assert set(claimed) == set(variant_ids)


async def test_an_upsell_with_the_same_idempotency_key_returns_the_first_one(
    paid: httpx.AsyncClient, shop: World, pool: asyncpg.Pool
) -> None:
    order = await shop.order(paid)
    await _pay(paid, order["payment"])
    url = f"/v1/orders/{order['id']}/variants"
    key = {"Idempotency-Key": f"up-{uuid.uuid4()}"}
    first = await paid.post(url, headers=shop.a | key)
    assert first.status_code == 201, first.text
    again = await paid.post(url, headers=shop.a | key)
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    kinds = await pool.fetch(
        "SELECT kind::text AS kind FROM payments WHERE order_id = $1", uuid.UUID(order["id"])
    )
    assert sorted(row["kind"] for row in kinds) == ["order", "upsell"]
    count = await pool.fetchval(
        "SELECT count(*) FROM song_variants WHERE order_id = $1", uuid.UUID(order["id"])
    )
    assert count == 4


async def test_with_payments_off_an_upsell_key_is_replayed_too(
    client: httpx.AsyncClient, world: World, pool: asyncpg.Pool
) -> None:
    order = await world.order(client)
    url = f"/v1/orders/{order['id']}/variants"
    key = {"Idempotency-Key": "same-upsell"}
    first = await client.post(url, headers=world.a | key)
    again = await client.post(url, headers=world.a | key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert first.json()["payment"] is None
    assert len(await outbox_events(pool, order["id"], "serenade.variants.requested")) == 4
