"""The console's door: sign-in, the session cookie, sign-out, CSRF, headers, redirects.

Every console route is listed in ``tests.cases.console.ROUTES``; the access suite below walks all
of them, so a new route that forgets the session check fails here.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import TYPE_CHECKING

import httpx
import pytest

from services.api.app import create_app
from services.api.console.signin import safe_next
from shared.auth import issue_token
from shared.db import Role
from tests.cases.console import OPEN_ROUTES, ROUTES
from tests.integration.api.conftest import api_settings, serve
from tests.integration.api.console_support import (
    browser_client,
    csrf_of,
    operator_token,
    sign_in,
)
from tests.integration.api.support import SECRET

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    import asyncpg
    from litestar import Litestar

    from shared.settings import Settings
    from tests.integration.api.support import World


def assert_console_headers(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "script-src 'self'" in response.headers["content-security-policy"]


@pytest.fixture
async def browser(app: Litestar, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    # ``client`` runs the app's lifespan for the session; each test gets its own cookie jar.
    async with browser_client(app) as fresh:
        yield fresh


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_console_route_without_a_session_redirects_to_sign_in(
    browser: httpx.AsyncClient, method: str, path: str
) -> None:
    answer = await browser.request(method, path, data={"csrf_token": "x"})

    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/login?next=/console")
    assert_console_headers(answer)


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("role", ["user", "service"])
async def test_a_bearer_token_opens_no_console_route(
    browser: httpx.AsyncClient, method: str, path: str, role: str
) -> None:
    # The console is a browser's: a session cookie, never an Authorization header.
    token = operator_token() if role == "service" else issue_token(SECRET, user_id=uuid.uuid4())
    answer = await browser.request(
        method, path, headers={"Authorization": f"Bearer {token}"}, data={"csrf_token": "x"}
    )

    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/login")


@pytest.mark.parametrize(("method", "path"), OPEN_ROUTES)
async def test_the_sign_in_form_and_assets_are_open_and_carry_the_headers(
    browser: httpx.AsyncClient, method: str, path: str
) -> None:
    answer = await browser.request(method, path)

    assert answer.status_code == 200
    assert_console_headers(answer)


async def test_an_operator_signs_in_and_every_page_answers(
    browser: httpx.AsyncClient, world: World
) -> None:
    landed = await sign_in(browser)

    assert landed.status_code == 303
    assert landed.headers["location"] == "/console"
    for method, path in ROUTES:
        if method != "GET":
            continue
        page = await browser.get(path)
        assert page.status_code in (200, 404), f"{path}: {page.status_code}"
        assert page.headers["content-type"].startswith("text/html")
        assert_console_headers(page)


async def test_the_session_cookie_is_httponly_strict_and_scoped_to_the_console(
    browser: httpx.AsyncClient,
) -> None:
    landed = await sign_in(browser)

    cookie = next(
        value
        for value in landed.headers.get_list("set-cookie")
        if value.startswith("serenade_console=")
    )
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "samesite", "max-age"} <= attributes
    assert "Path=/console" in cookie
    assert "samesite=strict" in cookie.lower()
    assert "secure" not in attributes  # no https public URL here


async def test_the_cookie_is_secure_when_the_public_url_is_https(
    database_url: str, nats_url: str, tmp_path: Path
) -> None:
    settings = api_settings(database_url, nats_url, tmp_path, public_url="https://songs.example")
    app = create_app(settings)
    # Behind https the browser returns Secure cookies only over https.
    async with serve(app), browser_client(app, base_url="https://testserver") as browser:
        landed = await sign_in(browser)

    cookie = next(v for v in landed.headers.get_list("set-cookie") if "serenade_console=" in v)
    assert "Secure" in cookie
    assert landed.status_code == 303


@pytest.mark.parametrize(
    "token",
    [
        issue_token(SECRET, user_id=uuid.uuid4()),
        issue_token(SECRET, role=Role.ANON),
        issue_token("another-secret-" + "x" * 40, role=Role.SERVICE),
        issue_token(SECRET, role=Role.SERVICE, ttl_seconds=-10),
        "not a token",
        "",
    ],
    ids=["user", "anon", "wrong-secret", "expired", "garbage", "empty"],
)
async def test_anything_but_a_valid_service_role_token_is_refused(
    browser: httpx.AsyncClient, pool: asyncpg.Pool, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="services.api.console.signin"):
        refused = await sign_in(browser, token)

    assert refused.status_code == 403
    assert "Refused" in refused.text
    assert "serenade_console=" not in " ".join(refused.headers.get_list("set-cookie"))
    assert (await browser.get("/console")).status_code == 303
    assert any("console sign-in refused" in record.getMessage() for record in caplog.records)


async def test_repeated_failures_are_rate_limited_even_for_a_good_token(
    app: Litestar, client: httpx.AsyncClient
) -> None:
    async with browser_client(app) as browser:
        answers = [(await sign_in(browser, "wrong")).status_code for _ in range(10)]
        then = await sign_in(browser)

    assert answers == [403] * 10
    assert then.status_code == 429
    assert "Too many refused sign-ins" in then.text
    async with browser_client(app) as elsewhere:  # another address is not held back
        assert (await sign_in(elsewhere)).status_code == 303


async def test_the_sign_in_form_without_its_csrf_token_is_refused(
    browser: httpx.AsyncClient,
) -> None:
    await browser.get("/console/login")
    missing = await browser.post("/console/login", data={"token": operator_token()})
    wrong = await browser.post(
        "/console/login", data={"token": operator_token(), "csrf_token": "forged"}
    )

    assert missing.status_code == 403
    assert wrong.status_code == 403
    assert (await browser.get("/console")).status_code == 303


async def test_the_session_ends_when_the_token_does(
    browser: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await sign_in(browser, operator_token(ttl=120))
    short = await pool.fetchrow(
        "SELECT created_at, expires_at FROM console_sessions ORDER BY created_at DESC LIMIT 1"
    )
    await sign_in(browser, operator_token(ttl=3 * 24 * 3600))
    capped = await pool.fetchrow(
        "SELECT created_at, expires_at FROM console_sessions ORDER BY created_at DESC LIMIT 1"
    )

    assert abs((short["expires_at"] - short["created_at"]) - dt.timedelta(seconds=120)) < (
        dt.timedelta(seconds=3)
    )
    assert capped["expires_at"] - capped["created_at"] == dt.timedelta(hours=12)


async def test_an_expired_session_is_sent_to_sign_in(
    browser: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await sign_in(browser)
    await pool.execute(
        "UPDATE console_sessions SET expires_at = now() - interval '1 second'"
        " WHERE revoked_at IS NULL AND expires_at > now() AND created_at > now() - interval '5 s'"
        " AND id = (SELECT id FROM console_sessions ORDER BY created_at DESC LIMIT 1)"
    )

    assert (await browser.get("/console")).status_code == 303


async def test_sign_out_revokes_the_session_on_the_server(browser: httpx.AsyncClient) -> None:
    await sign_in(browser)
    page = await browser.get("/console")
    kept_cookie = browser.cookies.get("serenade_console")

    out = await browser.post("/console/logout", data={"csrf_token": csrf_of(page.text)})

    assert out.status_code == 303
    assert out.headers["location"] == "/console/login"
    # The old cookie, sent again by someone who kept it, opens nothing.
    async with httpx.AsyncClient(
        transport=browser._transport, base_url="http://testserver"
    ) as thief:
        thief.cookies.set("serenade_console", kept_cookie or "", path="/console")
        assert (await thief.get("/console")).status_code == 303


async def test_sign_out_without_its_csrf_token_is_refused(browser: httpx.AsyncClient) -> None:
    await sign_in(browser)

    refused = await browser.post("/console/logout", data={})

    assert refused.status_code == 403
    assert (await browser.get("/console")).status_code == 200


async def test_a_new_sign_in_never_reuses_the_session_the_browser_brought(
    browser: httpx.AsyncClient,
) -> None:
    await sign_in(browser)
    first = browser.cookies.get("serenade_console")
    await sign_in(browser)
    second = browser.cookies.get("serenade_console")

    assert first
    assert second
    assert first != second
    async with httpx.AsyncClient(transport=browser._transport, base_url="http://testserver") as old:
        old.cookies.set("serenade_console", first, path="/console")
        assert (await old.get("/console")).status_code == 303


async def test_the_console_cookie_is_never_accepted_by_the_json_api(
    browser: httpx.AsyncClient,
) -> None:
    await sign_in(browser)
    cookie = browser.cookies.get("serenade_console")

    answer = await browser.get(
        "/v1/admin/failed-jobs", headers={"Cookie": f"serenade_console={cookie}"}
    )

    assert answer.status_code == 401


@pytest.mark.parametrize(
    ("asked", "landed"),
    [
        ("/console/orders?status=failed", "/console/orders?status=failed"),
        ("/console/dead-letters", "/console/dead-letters"),
        ("https://evil.example/console", "/console"),
        ("//evil.example/console", "/console"),
        ("/\\evil.example", "/console"),
        ("/v1/orders", "/console"),
        ("/consolex", "/console"),
        ("/console/login", "/console"),
        ("/console/../v1/orders", "/console"),
        ("/console/%2e%2e/v1/orders", "/console"),
        ("/console/orders/./x", "/console"),
    ],
)
async def test_after_sign_in_the_operator_lands_only_on_a_console_path(
    browser: httpx.AsyncClient, asked: str, landed: str
) -> None:
    answer = await sign_in(browser, next_path=asked)

    assert answer.status_code == 303
    assert answer.headers["location"] == landed
    assert safe_next(asked) == landed


async def test_a_redirect_to_sign_in_remembers_the_page(browser: httpx.AsyncClient) -> None:
    asked = await browser.get("/console/orders", params={"status": "failed"})
    landed = await sign_in(browser, next_path="/console/orders?status=failed")

    assert asked.headers["location"] == "/console/login?next=/console/orders%3Fstatus%3Dfailed"
    assert landed.headers["location"] == "/console/orders?status=failed"


async def test_a_session_is_shared_by_every_api_process_and_revoked_for_all(
    app: Litestar, client: httpx.AsyncClient, settings: Settings
) -> None:
    # A second API process: its own app, pool and NATS link, the same database.
    other = create_app(settings)
    async with serve(other), browser_client(app) as first, browser_client(other) as second:
        await sign_in(first)
        cookie = first.cookies.get("serenade_console")
        assert cookie
        second.cookies.set("serenade_console", cookie, path="/console")
        page = await second.get("/console/orders")
        assert page.status_code == 200

        out = await second.post("/console/logout", data={"csrf_token": csrf_of(page.text)})
        assert out.status_code == 303
        assert (await first.get("/console")).status_code == 303
