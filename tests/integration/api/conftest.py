"""The API under test: the real app (real pool, real NATS, real relay) served in this event loop
through httpx's ASGI transport, so concurrent requests really run concurrently."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING

import httpx
import pytest

from services.api.app import create_app
from shared.auth import issue_token
from shared.db import Role
from shared.settings import Settings
from tests.integration.api.support import SECRET, World

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    import asyncpg
    from litestar import Litestar


def api_settings(database_url: str, nats_url: str, root: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "nats_url": nats_url,
        "jwt_secret": SECRET,
        "data_dir": root / "data",
        "storage_url": (root / "storage").as_uri(),
        "provider": "instant",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def serve(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app's lifespan around an httpx client that calls it in this loop.

    The lifespan runs in a task of its own: its task group must be left by the task that
    entered it, and a session fixture's teardown runs in another task than its setup.
    """
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run_lifespan())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # the lifespan failed: raise its error
    try:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        stop.set()
        await task


@pytest.fixture(scope="session")
def settings(
    database_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return api_settings(database_url, nats_url, tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="session")
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture(scope="session")
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(app) as client:
        yield client


@pytest.fixture
def world(pool: asyncpg.Pool, settings: Settings) -> World:
    """Two fresh users and the means to shape their data (as the database owner)."""
    return World(pool, settings, user_a=uuid.uuid4(), user_b=uuid.uuid4())


@pytest.fixture(scope="session")
def service_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, role=Role.SERVICE)}"}
