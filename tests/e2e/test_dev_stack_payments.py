"""``SERENADE_PAYMENTS=local serenade dev`` as a newcomer runs it: the printed order waits for
its payment; its checkout link, opened in headless Chromium, shows the amount and pays; the
order then completes (the real generator) and its song is on the share page."""

from __future__ import annotations

import asyncio
import html
import re
import subprocess
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from services.launcher import free_port
from tests.browser import Chromium, chromium_missing
from tests.e2e.test_dev_stack import DevStack, _leftovers, _printed_command
from tests.helpers import wait_for

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.timeout(420)
async def test_local_checkout_pays_an_order_in_chromium_and_the_order_completes(
    tmp_path: Path,
) -> None:
    if (why := chromium_missing()) is not None:
        pytest.fail(why)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    stack = DevStack(tmp_path, port, {"SERENADE_PAYMENTS": "local", "SERENADE_PROVIDER": "instant"})
    stack.start()
    try:
        summary = await asyncio.to_thread(stack.summary)
        assert f"{base}/pay/<payment_id>" in summary
        assert "serenade pay <order_id>" in summary
        command = _printed_command(summary)
        created = await asyncio.to_thread(
            subprocess.run, ["bash", "-c", command], capture_output=True, text=True, check=True
        )
        order = httpx.Response(200, content=created.stdout).json()
        assert order["status"] == "awaiting_payment", created.stdout
        assert order["payment"]["amount"] == 2900
        token = re.search(r"Bearer ([\w.-]+)", command)
        assert token is not None
        headers = {"Authorization": f"Bearer {token.group(1)}"}

        async with Chromium.launch() as browser:
            page = await browser.open(base + order["payment"]["checkout_url"])
            assert await page.evaluate("document.getElementById('amount').textContent") == (
                "29.00 EUR"
            )
            await page.click("#pay")
            status = await page.evaluate("document.getElementById('status').dataset.status")
            assert status == "paid"
            assert page.problems == []

        async with httpx.AsyncClient(base_url=base, timeout=10) as client:

            async def finished() -> dict[str, Any] | None:
                body: dict[str, Any] = (
                    await client.get(f"/v1/orders/{order['id']}", headers=headers)
                ).json()
                return body if body["status"] in ("complete", "failed") else None

            done = await wait_for(finished, timeout=120, interval=0.5, what="the order to finish")
            assert done["status"] == "complete", done
            assert done["payment"]["status"] == "paid"
            variant = done["variants"][0]
            shared = await client.get(f"/s/{variant['share_token']}")
            assert shared.status_code == 200
            assert html.escape(variant["title"]) in shared.text
    finally:
        code = await asyncio.to_thread(stack.interrupt)
    assert code == 0
    assert await wait_for(
        lambda: asyncio.to_thread(lambda: not _leftovers(tmp_path)),
        timeout=15,
        what="every process of the stack to end",
    ), _leftovers(tmp_path)
