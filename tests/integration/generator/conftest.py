"""A fresh nats-server and a fresh database per test: every test sees only its own stream,
consumer and rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import nats
import pytest

from services.launcher import EmbeddedNats
from shared.db import create_pool
from shared.stream import ensure_stream
from tests.helpers import SubjectRecorder

from .support import close_quietly

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    import asyncpg
    from nats.aio.client import Client as NatsClient
    from nats.js import JetStreamContext

    from shared.settings import Settings
    from tests.conftest import DatabaseFactory


@dataclass
class GeneratorEnv:
    """Servers, clients and settings of one test."""

    settings: Settings
    nats_url: str
    database_url: str
    nc: NatsClient
    js: JetStreamContext
    pool: asyncpg.Pool
    recorder: SubjectRecorder
    storage_root: Path
    make_settings: Callable[..., Settings]

    def with_settings(self, **overrides: object) -> Settings:
        """This test's servers and storage with other generator settings."""
        return self.make_settings(**overrides)


@pytest.fixture
async def generator_env(
    tmp_path: Path,
    make_database: DatabaseFactory,
    settings_factory: Callable[..., Settings],
) -> AsyncIterator[GeneratorEnv]:
    server = EmbeddedNats(tmp_path / "nats")
    url = server.start()
    database_url = await make_database()
    storage_root = tmp_path / "storage"

    def make_settings(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": database_url,
            "nats_url": url,
            "storage_url": storage_root.as_uri(),
            "generator_ack_wait": 2.0,
            "generator_shutdown_grace": 1.0,
            "generator_concurrency": 4,
        }
        return settings_factory(**(values | overrides))

    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_stream(js)
    pool = await create_pool(database_url, min_size=1, max_size=4)
    recorder = await SubjectRecorder().start(url, "serenade.>")
    try:
        yield GeneratorEnv(
            settings=make_settings(),
            nats_url=url,
            database_url=database_url,
            nc=nc,
            js=js,
            pool=pool,
            recorder=recorder,
            storage_root=storage_root,
            make_settings=make_settings,
        )
    finally:
        await recorder.stop()
        await pool.close()
        await close_quietly(nc)
        server.stop()
