"""Faults and settings around payments: PostgreSQL down during a webhook (503, then Stripe's
own retry succeeds, once), payments off (everything as before), the local checkout refused on
a public address."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from services.api.app import create_app
from services.api.main import LocalCheckoutExposedError, require_loopback_for_local_payments
from services.launcher import EmbeddedPostgres, migrate
from shared.db import connect
from tests.integration.api.conftest import api_settings, serve
from tests.integration.api.support import ORDER, bearer
from tests.integration.payments.support import (
    WEBHOOK_SECRET,
    checkout_completed,
    post_event,
)

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

    from shared.settings import Settings
    from tests.integration.api.support import World


async def _requested(dsn: str, order_id: str) -> int:
    conn = await connect(dsn)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE subject = 'serenade.variants.requested'"
            " AND payload->>'order_id' = $1",
            order_id,
        )
    finally:
        await conn.close()
    return count


async def test_postgres_down_during_a_webhook_is_503_and_the_retry_applies_it_once(
    tmp_path: Path, nats_url: str, shop: World
) -> None:
    postgres = EmbeddedPostgres(tmp_path / "postgres", durable=False)
    dsn = postgres.start()
    try:
        await migrate(dsn)
        settings = api_settings(
            dsn,
            nats_url,
            tmp_path,
            payments="local",
            payment_webhook_secret=WEBHOOK_SECRET,
            payment_worker_interval=60.0,
        )
        async with serve(create_app(settings)) as client:
            order = (await client.post("/v1/orders", json=ORDER, headers=shop.a)).json()
            paid_event = checkout_completed(order["payment"])
            postgres.stop()
            down = await post_event(client, paid_event)
            assert down.status_code == 503, down.text
            assert down.headers["content-type"].startswith("application/problem+json")
            postgres.start()
            # Stripe retries the same event: it takes effect now, and only once.
            retried = await post_event(client, paid_event)
            assert retried.status_code == 200, retried.text
            assert retried.json()["outcome"] == "paid"
            assert (await post_event(client, paid_event)).json()["outcome"] == "duplicate"
            assert await _requested(dsn, order["id"]) == 3
    finally:
        postgres.stop(mode="immediate")


async def test_with_payments_off_orders_are_free_and_cancel_is_409(
    client: httpx.AsyncClient, world: World
) -> None:
    order = await world.order(client)
    assert order["payment"] is None
    assert order["payments"] == []
    assert order["status"] == "pending"
    assert all(v["payment"] is None for v in order["variants"])
    response = await client.delete(f"/v1/orders/{order['id']}", headers=world.a)
    assert response.status_code == 409
    webhook = await post_event(
        client, checkout_completed({"id": order["id"], "amount": 1, "currency": "eur"})
    )
    assert webhook.status_code == 404
    assert (await client.get(f"/pay/{order['id']}")).status_code == 404


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com"])  # noqa: S104
def test_the_local_checkout_is_refused_on_a_public_address(
    paid_settings: Settings, host: str
) -> None:
    with pytest.raises(LocalCheckoutExposedError, match="loopback"):
        require_loopback_for_local_payments(paid_settings.model_copy(update={"api_host": host}))


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_the_local_checkout_is_allowed_on_loopback(paid_settings: Settings, host: str) -> None:
    require_loopback_for_local_payments(paid_settings.model_copy(update={"api_host": host}))


async def test_an_owner_order_for_user_b_is_not_payable_by_user_a(
    paid: httpx.AsyncClient, shop: World
) -> None:
    # Another user's order: cancel and upsell answer 404, never 403.
    order = (await paid.post("/v1/orders", json=ORDER, headers=bearer(shop.user_b))).json()
    assert (await paid.delete(f"/v1/orders/{order['id']}", headers=shop.a)).status_code == 404
    upsell = await paid.post(f"/v1/orders/{order['id']}/variants", headers=shop.a)
    assert upsell.status_code == 404
