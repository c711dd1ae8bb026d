"""The operator console in a real headless Chromium (Debian's), against a real stack: the API
over HTTP, ``serenade generator`` and ``serenade deadletter`` as processes, their own
PostgreSQL database and nats-server.

The story an operator lives at night: a provider fails, a variant is dead-lettered; they sign
in, find it, fix the provider, replay it, watch it resolve, find the order and play its song.
The same pages are used with JavaScript off. The screenshots in ``docs/console/`` are taken
here, so they always show the console as it is: written there by ``make screenshots``
(``SERENADE_SCREENSHOTS=1``); a plain test run leaves the checkout as it found it.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from services.api.app import create_app
from services.launcher import EmbeddedNats, ServiceProcess
from shared.auth import issue_token
from shared.db import Role, create_pool
from tests.browser import Chromium, Page, chromium_missing
from tests.helpers import wait_for
from tests.integration.api.conftest import api_settings
from tests.integration.api.live_server import serve_over_http
from tests.integration.api.support import ORDER, SECRET

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg

    from shared.settings import Settings
    from tests.conftest import DatabaseFactory

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "console"
FAILING = {"SERENADE_PROVIDER_FAILURE_RATE": "1"}
HEALED = {"SERENADE_PROVIDER_FAILURE_RATE": "0"}


class Stack:
    """The servers, the processes and the means to look inside, for this module."""

    def __init__(self, settings: Settings, url: str, pool: asyncpg.Pool, root: Path) -> None:
        self.settings = settings
        self.url = url
        self.pool = pool
        self.generator = ServiceProcess(["generator"], settings, root / "generator.log")
        self.deadletter = ServiceProcess(["deadletter"], settings, root / "deadletter.log")

    async def restart_generator(self, **env: str) -> None:
        if self.generator.alive():
            self.generator.terminate()
        self.generator.start(**env)
        await self.generator.wait_ready()

    async def order(self, variant_count: int = 1) -> dict[str, Any]:
        user = issue_token(SECRET, user_id=uuid.uuid4())
        async with httpx.AsyncClient(base_url=self.url, timeout=15.0) as http:
            made = await http.post(
                "/v1/orders",
                json=ORDER | {"variant_count": variant_count},
                headers={"Authorization": f"Bearer {user}"},
            )
        assert made.status_code == 201, made.text
        body: dict[str, Any] = made.json()
        return body

    async def dead_letter_of(self, variant_id: str) -> asyncpg.Record:
        async def found() -> asyncpg.Record | None:
            row: asyncpg.Record | None = await self.pool.fetchrow(
                "SELECT id, error, resolved_at FROM failed_jobs WHERE variant_id = $1"
                " ORDER BY created_at DESC LIMIT 1",
                uuid.UUID(variant_id),
            )
            return row

        row: asyncpg.Record = await wait_for(
            found, timeout=60, what=f"a dead letter about variant {variant_id}"
        )
        return row


@pytest.fixture(scope="module")
async def stack(
    make_database: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    root = tmp_path_factory.mktemp("console-stack")
    nats_server = EmbeddedNats(root / "nats")
    nats_url = nats_server.start()
    database_url = await make_database()
    settings = api_settings(
        database_url, nats_url, root, max_attempts=1, retry_backoff=(0.2,), metrics_port=0
    )
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        async with serve_over_http(create_app(settings)) as server:
            stack = Stack(settings, server.url, pool, root)
            stack.deadletter.start()
            stack.generator.start(**FAILING)
            await stack.deadletter.wait_ready()
            await stack.generator.wait_ready()
            try:
                yield stack
            finally:
                for process in (stack.generator, stack.deadletter):
                    if process.alive():
                        process.terminate()
    finally:
        await pool.close()
        nats_server.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Chromium]:
    if (why := chromium_missing()) is not None:
        pytest.fail(why)
    async with Chromium.launch() as chromium:
        yield chromium


async def _open(browser: Chromium, url: str, *, javascript: bool = True) -> Page:
    """A private desktop window (each test signs in afresh): the console is an operator's page."""
    return await browser.open(
        url, width=1280, height=900, mobile=False, javascript=javascript, private=True
    )


def _save(name: str, png: bytes) -> None:
    assert png.startswith(b"\x89PNG"), "the browser returned no PNG"
    if not os.environ.get("SERENADE_SCREENSHOTS"):
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / name).write_bytes(png)


async def _sign_in(page: Page, token: str) -> None:
    await page.type_into("#token", token)
    await page.click("form[action='/console/login'] button[type=submit]")


async def _text(page: Page) -> str:
    html = await page.html()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_an_operator_replays_a_dead_letter_then_plays_the_song(
    stack: Stack, browser: Chromium
) -> None:
    order = await stack.order()
    variant = order["variants"][0]
    job = await stack.dead_letter_of(variant["id"])
    assert "injected failure" in job["error"]

    page = await _open(browser, f"{stack.url}/console/dead-letters")
    assert (await page.url()).startswith(f"{stack.url}/console/login?next=/console/dead-letters")
    await _sign_in(page, issue_token(SECRET, role=Role.SERVICE))
    assert await page.url() == f"{stack.url}/console/dead-letters"
    row = f"#job-{job['id']}"
    seen = await page.evaluate(
        f"(() => {{ const r = document.querySelector('{row}');"
        " return {error: r.querySelector('.error').textContent,"
        " state: r.querySelector('.state').textContent,"
        " event: r.querySelector('pre.event').textContent}; })()"
    )
    assert "injected failure" in seen["error"]
    assert seen["state"] == "open"
    assert variant["id"] in seen["event"]
    await page.evaluate(f"document.querySelector('{row} details').open = true")
    _save("dead-letters.png", await page.screenshot())

    # The provider is mended; the operator replays the row.
    await stack.restart_generator(**HEALED)
    await page.click(f"{row} form button[type=submit]")
    assert await page.url() == f"{stack.url}/console/dead-letters?replayed={job['id']}"
    assert f"Replayed {job['id']}" in await _text(page)

    async def resolved() -> bool:
        await page.goto(f"{stack.url}/console/dead-letters")
        state = await page.evaluate(f"document.querySelector('{row} .state').textContent")
        return bool(state == "resolved")

    await wait_for(resolved, timeout=60, what="the replayed row to be resolved")

    # Find the order and play its song.
    await page.goto(f"{stack.url}/console/orders")
    await page.type_into("input[name=order_id]", order["id"])
    await page.click("form.filters button[type=submit]")
    await page.click(f"a[href='/console/orders/{order['id']}']")
    assert await page.url() == f"{stack.url}/console/orders/{order['id']}"
    assert await page.evaluate("document.querySelector('#order-status').textContent") == (
        "complete"
    )
    played = await page.evaluate(
        "(async () => { const a = document.querySelector('audio'); await a.play();"
        " await new Promise(done => a.addEventListener('timeupdate', done, {once: true}));"
        " return {time: a.currentTime, error: a.error, paused: a.paused}; })()",
        user_gesture=True,
    )
    assert played["error"] is None
    assert played["time"] > 0
    await page.evaluate("document.querySelector('audio').pause()")
    _save("order.png", await page.screenshot())

    # The system page refreshes its figures in place (no reload: the marker survives).
    await page.goto(f"{stack.url}/console")
    await page.evaluate("window.stillThisPage = true")
    first = await page.evaluate("document.querySelector('#measured-at').textContent")

    async def refreshed() -> bool:
        now = await page.evaluate(
            "[document.querySelector('#measured-at').textContent, window.stillThisPage]"
        )
        return bool(now[0] != first and now[1] is True)

    await wait_for(refreshed, timeout=30, what="the system figures to refresh in place")
    consumers = await page.evaluate(
        "[...document.querySelectorAll('#figures table')[0].querySelectorAll('tbody tr')]"
        ".map(r => r.children[1].textContent)"
    )
    assert {"generator", "deadletter"} <= set(consumers)
    _save("system.png", await page.screenshot())
    assert page.problems == [], page.problems


async def test_a_non_operator_token_is_refused_in_the_browser(
    stack: Stack, browser: Chromium
) -> None:
    page = await _open(browser, f"{stack.url}/console")
    await _sign_in(page, issue_token(SECRET, user_id=uuid.uuid4()))

    assert await page.url() == f"{stack.url}/console/login"
    assert "Refused: a authenticated token cannot open the console" in await _text(page)
    await page.goto(f"{stack.url}/console/orders")
    assert (await page.url()).startswith(f"{stack.url}/console/login")


async def test_a_form_posted_without_its_csrf_token_is_refused_in_the_browser(
    stack: Stack, browser: Chromium
) -> None:
    await stack.restart_generator(**FAILING)
    order = await stack.order()
    job = await stack.dead_letter_of(order["variants"][0]["id"])
    page = await _open(browser, f"{stack.url}/console/login")
    await _sign_in(page, issue_token(SECRET, role=Role.SERVICE))
    await page.goto(f"{stack.url}/console/dead-letters/{job['id']}")

    await page.evaluate(
        "document.querySelector(\"form[action$='/replay'] input[name=csrf_token]\").remove()"
    )
    await page.click("form[action$='/replay'] button[type=submit]")

    assert "Refused" in await _text(page)
    assert (
        await stack.pool.fetchval("SELECT replayed_at FROM failed_jobs WHERE id = $1", job["id"])
        is None
    )
    assert (
        await stack.pool.fetchval(
            "SELECT status::text FROM song_variants WHERE id = $1",
            uuid.UUID(order["variants"][0]["id"]),
        )
        == "failed"
    )


async def test_the_console_is_usable_with_javascript_off(stack: Stack, browser: Chromium) -> None:
    await stack.restart_generator(**FAILING)
    order = await stack.order()
    job = await stack.dead_letter_of(order["variants"][0]["id"])
    page = await _open(browser, f"{stack.url}/console", javascript=False)

    await _sign_in(page, issue_token(SECRET, role=Role.SERVICE))
    assert await page.url() == f"{stack.url}/console"
    assert "Durable consumers" in await _text(page)
    await page.click("nav a[href='/console/dead-letters']")
    await page.click(f"#job-{job['id']} form button[type=submit]")
    assert f"Replayed {job['id']}" in await _text(page)
    await page.click("nav a[href='/console/orders']")
    await page.type_into("input[name=order_id]", order["id"])
    await page.click("form.filters button[type=submit]")
    assert order["id"] in await _text(page)
    await page.click("form.signout button[type=submit]")
    assert await page.url() == f"{stack.url}/console/login"
    await page.goto(f"{stack.url}/console")
    assert (await page.url()).startswith(f"{stack.url}/console/login")
    assert page.problems == [], page.problems
