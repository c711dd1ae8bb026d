"""``serenade pay ORDER_ID`` against an API served over real HTTP with the local checkout."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx
from click.testing import CliRunner

from services.api.app import create_app
from services.cli import main
from tests.integration.api.live_server import serve_over_http
from tests.integration.api.support import ORDER, SECRET, bearer
from tests.integration.payments.support import outbox_events

if TYPE_CHECKING:
    import asyncpg

    from shared.settings import Settings
    from tests.integration.api.support import World


def _pay(url: str, order_id: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["pay", order_id, "--api", url], env={"SERENADE_JWT_SECRET": SECRET}
    )
    return result.exit_code, result.output


async def test_serenade_pay_pays_the_orders_awaiting_payment(
    paid_settings: Settings, shop: World, pool: asyncpg.Pool
) -> None:
    async with (
        serve_over_http(create_app(paid_settings)) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        created = await client.post("/v1/orders", json=ORDER, headers=bearer(shop.user_a))
        order = created.json()
        code, output = await asyncio.to_thread(_pay, server.url, order["id"])
        assert code == 0, output
        assert f"paid 29.00 EUR for order {order['id']} (order)" in output
        shown = await client.get(f"/v1/orders/{order['id']}", headers=bearer(shop.user_a))
        assert shown.json()["payment"]["status"] == "paid"
        assert len(await outbox_events(pool, order["id"], "serenade.variants.requested")) == 3
        # Nothing left to pay: a clear error, exit code 1.
        code, output = await asyncio.to_thread(_pay, server.url, order["id"])
        assert code == 1
        assert "no payment awaiting" in output


async def test_serenade_pay_says_when_the_api_cannot_be_reached() -> None:
    code, output = await asyncio.to_thread(
        _pay, "http://127.0.0.1:9", "00000000-0000-0000-0000-000000000001"
    )
    assert code == 1
    assert "cannot reach the API" in output
