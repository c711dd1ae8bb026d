"""Driving the console as a browser would: its forms, its cookies, its hidden fields."""

from __future__ import annotations

import contextlib
import re
import uuid
from typing import TYPE_CHECKING

import httpx

from shared.auth import issue_token
from shared.db import Role
from tests.integration.api.support import SECRET

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar import Litestar

__all__ = ["CSRF", "browser_client", "csrf_of", "operator_token", "sign_in"]

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def operator_token(ttl: int = 3600) -> str:
    return issue_token(SECRET, role=Role.SERVICE, ttl_seconds=ttl)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "the page has no csrf_token field"
    return found.group(1)


@contextlib.asynccontextmanager
async def browser_client(
    app: Litestar, *, client: str | None = None, base_url: str = "http://testserver"
) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh cookie jar against the running ``app`` (its lifespan is the session's), from
    its own address (each test's sign-in failures are counted apart)."""
    address = (
        client or f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    )
    transport = httpx.ASGITransport(app=app, client=(address, 40000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as browser:
        yield browser


async def sign_in(
    browser: httpx.AsyncClient, token: str | None = None, *, next_path: str | None = None
) -> httpx.Response:
    """Fill in and send the sign-in form; the answer (303 on success) is returned."""
    form_page = await browser.get(
        "/console/login", params={"next": next_path} if next_path else None
    )
    assert form_page.status_code == 200, form_page.text
    fields = {
        "csrf_token": csrf_of(form_page.text),
        "token": operator_token() if token is None else token,
    }
    found_next = re.search(r'name="next" value="([^"]*)"', form_page.text)
    if found_next:
        fields["next"] = found_next.group(1).replace("&amp;", "&")
    return await browser.post("/console/login", data=fields)
