"""An API with payments on (the local provider), served in this loop like the other API tests.
Its payments worker runs rarely on its own: tests drive its rounds with ``run_once``."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from services.api.app import create_app
from tests.integration.api.conftest import api_settings, app, client, serve, settings, world  # noqa: F401 - payments off
from tests.integration.api.support import World
from tests.integration.payments.support import WEBHOOK_SECRET

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg
    import httpx
    from litestar import Litestar

    from services.api.payments.worker import PaymentsWorker
    from shared.settings import Settings


@pytest.fixture(scope="session")
def paid_settings(
    database_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return api_settings(
        database_url,
        nats_url,
        tmp_path_factory.mktemp("payments"),
        payments="local",
        payment_webhook_secret=WEBHOOK_SECRET,
        payment_worker_interval=60.0,
    )


@pytest.fixture(scope="session")
def paid_app(paid_settings: Settings) -> Litestar:
    return create_app(paid_settings)


@pytest.fixture(scope="session")
async def paid(paid_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(paid_app) as api:
        yield api


@pytest.fixture
def worker(paid_app: Litestar, paid: httpx.AsyncClient) -> PaymentsWorker:
    found: PaymentsWorker = paid_app.state.payments_worker
    return found


@pytest.fixture
def shop(pool: asyncpg.Pool, paid_settings: Settings) -> World:
    return World(pool, paid_settings, user_a=uuid.uuid4(), user_b=uuid.uuid4())
