"""The order's live stream with payments on: a cancelled (or expired) order ends its stream with
``event: order`` and status ``cancelled``, live or in the first snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from services.api.app import create_app
from services.api.live import StreamTuning
from tests.helpers import wait_for
from tests.integration.api.live_server import serve_over_http
from tests.integration.api.support import ORDER, bearer
from tests.integration.api.test_order_events import SseReader

if TYPE_CHECKING:
    from shared.settings import Settings
    from tests.integration.api.support import World


async def test_cancelling_ends_the_live_stream_with_a_cancelled_order(
    paid_settings: Settings, shop: World
) -> None:
    app = create_app(paid_settings, stream_tuning=StreamTuning(heartbeat_seconds=0.5))
    async with (
        serve_over_http(app) as server,
        httpx.AsyncClient(base_url=server.url, timeout=15.0) as client,
    ):
        feed = app.state.live.feed

        async def subscribed() -> bool:
            return bool(feed.subscribed.is_set())

        await wait_for(subscribed, what="the live feed to subscribe")
        headers = bearer(shop.user_a)
        order = (await client.post("/v1/orders", json=ORDER, headers=headers)).json()
        url = f"/v1/orders/{order['id']}/events"
        async with client.stream("GET", url, headers=headers) as response:
            reader = SseReader(response)
            first = await reader.events(3)
            assert {item.event for item in first} == {"variant"}
            cancel = await client.delete(f"/v1/orders/{order['id']}", headers=headers)
            assert cancel.status_code == 200
            seen = []
            while (item := await reader.next_event(15)) is not None:
                seen.append(item)
            assert seen[-1].event == "order"
            assert seen[-1].data is not None
            assert seen[-1].data["status"] == "cancelled"
            assert seen[-1].data["reason"] == "cancelled"
            assert {i.data["error"] for i in seen[:-1] if i.data} <= {"cancelled"}
        # Opened after the fact: the snapshot, then the same end at once.
        async with client.stream("GET", url, headers=headers) as response:
            items = []
            reader = SseReader(response)
            while (item := await reader.next_event(15)) is not None:
                items.append(item)
            assert [i.event for i in items] == ["variant"] * 3 + ["order"]
            assert items[-1].data is not None
            assert items[-1].data["status"] == "cancelled"
