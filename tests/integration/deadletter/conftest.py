"""Each dead-letter test module gets a nats-server and a database of its own: the service's
durable consumers read streams from their start, so shared servers would mix modules' messages."""

from __future__ import annotations

from typing import TYPE_CHECKING

import nats
import pytest
from faststream import TestApp

from services.deadletter.app import build_app
from services.launcher import EmbeddedNats
from shared.db import create_pool
from shared.settings import Settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    import asyncpg
    from faststream import FastStream
    from nats.js import JetStreamContext

    from tests.conftest import DatabaseFactory


@pytest.fixture(scope="module")
def dl_nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedNats(tmp_path_factory.mktemp("deadletter-nats"))
    yield server.start()
    server.stop()


@pytest.fixture(scope="module")
async def dl_database_url(make_database: DatabaseFactory) -> str:
    return await make_database()


@pytest.fixture(scope="module")
async def dl_pool(dl_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(dl_database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
def dl_settings(
    dl_database_url: str, dl_nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return Settings(
        database_url=dl_database_url,
        nats_url=dl_nats_url,
        jwt_secret="test-secret-" + "x" * 32,
        data_dir=tmp_path_factory.mktemp("deadletter-data"),
    )


@pytest.fixture(scope="module")
async def deadletter(dl_settings: Settings) -> AsyncIterator[FastStream]:
    """The dead-letter service, running in this process for the module."""
    app = build_app(dl_settings)
    async with TestApp(app):
        yield app


@pytest.fixture(scope="module")
async def js(dl_nats_url: str) -> AsyncIterator[JetStreamContext]:
    client = await nats.connect(dl_nats_url)
    yield client.jetstream()
    await client.close()
