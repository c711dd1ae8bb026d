"""Fixtures shared by every tier: real PostgreSQL and nats-server, started here on free ports in
temporary folders (or taken from SERENADE_TEST_DATABASE_URL / SERENADE_TEST_NATS_URL)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.launcher import EmbeddedNats, EmbeddedPostgres, create_database
from shared.db import create_pool
from shared.settings import Settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator


_OWN_ROOT = pytest.StashKey[Path]()


@pytest.hookimpl(tryfirst=True)  # before pytest's own, which reads --basetemp when configured
def pytest_configure(config: pytest.Config) -> None:
    """Each session's temporary folders under a root of its own, unless --basetemp names one.

    Every pytest session that starts resets pytest's shared root (``/tmp/pytest-of-<user>``) to
    mode 0700. As root, the embedded PostgreSQL runs as the ``pgserver`` user, and a session
    still running (``make drills`` beside ``make test``) would have its PostgreSQL lose its data
    folder and panic: seen here. A root no other session knows is left alone."""
    if config.option.basetemp is None:
        root = Path(tempfile.mkdtemp(prefix="serenade-pytest-"))
        config.option.basetemp = str(root / "tmp")
        config.stash[_OWN_ROOT] = root


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The session's own root goes when every test passed; kept, and named, when one failed."""
    root = session.config.stash.get(_OWN_ROOT, None)
    if root is None:
        return
    if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"\ntemporary folders of this session kept in {root}")


class TestTargets(BaseSettings):
    """Servers the suite may be pointed at instead of its embedded ones."""

    __test__ = False
    model_config = SettingsConfigDict(env_prefix="SERENADE_TEST_", extra="ignore")

    database_url: str | None = None
    nats_url: str | None = None


@pytest.fixture(scope="session")
def test_targets() -> TestTargets:
    return TestTargets()


@pytest.fixture(scope="session")
def postgres_admin_dsn(
    test_targets: TestTargets, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A PostgreSQL server for the session: its admin DSN."""
    if test_targets.database_url:
        yield test_targets.database_url
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("postgres"), durable=False)
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
def nats_url(test_targets: TestTargets, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A nats-server with JetStream for the session."""
    if test_targets.nats_url:
        yield test_targets.nats_url
        return
    server = EmbeddedNats(tmp_path_factory.mktemp("nats"))
    yield server.start()
    server.stop()


class DatabaseFactory:
    """Makes empty (by default migrated) databases on the session's server."""

    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn = admin_dsn

    async def __call__(self, *, migrated: bool = True) -> str:
        return await create_database(self.admin_dsn, migrated=migrated)


@pytest.fixture(scope="session")
def make_database(postgres_admin_dsn: str) -> DatabaseFactory:
    return DatabaseFactory(postgres_admin_dsn)


@pytest.fixture(scope="session")
async def database_url(make_database: DatabaseFactory) -> str:
    """One migrated database shared by the session's tests (each test uses its own users)."""
    return await make_database()


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=8)
    yield pool
    await pool.close()


@pytest.fixture
def settings_factory(database_url: str, nats_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a service under test: the session's servers, this test's storage folder."""

    def _make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": database_url,
            "nats_url": nats_url,
            "jwt_secret": "test-secret-" + "x" * 32,
            "data_dir": tmp_path / "data",
            "storage_url": (tmp_path / "storage").as_uri(),
            "provider": "instant",
            "retry_backoff": (0.2,),
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return _make
