"""One drill's stack: its own PostgreSQL and NATS (one server, or a cluster) in a folder of its
own, migrated, and ``serenade api``, ``generator`` (one or more) and ``deadletter`` as child
processes, set up as the documented deployment is: the services log in as the role that
deploy/postgres/10-serenade-roles.sql creates (neither superuser nor BYPASSRLS).

Checks read the database as its superuser (``admin``), so row-level security hides nothing
from them, and the stream through a NATS client of their own that reconnects forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import nats
import psutil

from services.launcher import (
    READY_TIMEOUT,
    EmbeddedNats,
    EmbeddedPostgres,
    ServiceProcess,
    free_port,
    migrate,
    stop_all,
)
from shared.db import connect
from shared.settings import Settings
from shared.stream import ensure_stream
from tests.cases.tokens import SECRET
from tests.drills.cluster import NatsCluster

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg
    from nats.aio.client import Client as NatsClient
    from nats.js import JetStreamContext

__all__ = ["PAYMENT_WEBHOOK_SECRET", "SECRET", "Stack", "StackOptions"]

# SECRET (tests/cases/tokens.py) is the API tests' signing secret: the stack signs with it, so the
# negative token suite means the same over HTTP as in process.
PAYMENT_WEBHOOK_SECRET = "whsec_drill_" + "p" * 32
# What the postgres image runs at its first start in the documented deployment.
INIT_SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "postgres" / "10-serenade-roles.sql"
LOGIN_ROLE = "serenade"
DATABASE = "serenade"


@dataclass(frozen=True, kw_only=True)
class StackOptions:
    """What a drill needs of its stack."""

    generators: int = 1
    generator_concurrency: int = 8
    # Small, so that a lost generator's work comes back within a drill.
    ack_wait: float = 3.0
    provider_delay_ms: int = 0
    provider_failure_rate: float = 0.0
    max_attempts: int = 3
    retry_backoff: tuple[float, ...] = (0.2, 0.5)
    shutdown_grace: float = 1.0
    # fsync on: a drill that crashes PostgreSQL must not lose what it acknowledged.
    durable_postgres: bool = False
    # 0: one nats-server; n: a cluster of n with the stream at n replicas.
    cluster: int = 0
    # "off" (orders are free, as in every drill but the payments one) or "local".
    payments: str = "off"


@dataclass
class Stack:
    root: Path
    options: StackOptions = field(default_factory=StackOptions)
    postgres: EmbeddedPostgres = field(init=False)
    nats_server: EmbeddedNats | None = field(default=None, init=False)
    cluster: NatsCluster | None = field(default=None, init=False)
    settings: Settings = field(init=False)
    api: ServiceProcess = field(init=False)
    generators: list[ServiceProcess] = field(default_factory=list, init=False)
    deadletter: ServiceProcess = field(init=False)
    nc: NatsClient = field(init=False)
    js: JetStreamContext = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        self.postgres = EmbeddedPostgres(
            self.root / "postgres", durable=self.options.durable_postgres
        )
        self.storage_root = self.root / "storage"
        self.logs = self.root / "logs"
        self._password = uuid.uuid4().hex

    # --- addresses -----------------------------------------------------------------------
    @property
    def admin_dsn(self) -> str:
        """The superuser, on the serenade database: checks see every row."""
        return self.postgres.dsn(DATABASE)

    @property
    def login_dsn(self) -> str:
        """What the services use: the documented deployment's login role."""
        assert self.postgres.port is not None
        return (
            f"postgresql://{LOGIN_ROLE}:{self._password}@127.0.0.1:{self.postgres.port}/{DATABASE}"
        )

    @property
    def nats_urls(self) -> list[str]:
        if self.cluster is not None:
            return self.cluster.urls
        assert self.nats_server is not None
        return [self.nats_server.url]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.api_port}"

    @property
    def services(self) -> list[ServiceProcess]:
        return [self.api, *self.generators, self.deadletter]

    # --- start and stop ------------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.to_thread(self._start_servers)
        await migrate(self.login_dsn)
        self.nc = await nats.connect(
            self.nats_urls,
            name="drill-observer",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.25,
            connect_timeout=2,
        )
        self.js = self.nc.jetstream(timeout=10)
        # A cluster's stream is made at its replica count before any service starts: the
        # services' ensure_stream then finds it as it wants it and leaves it be.
        replicas = max(self.options.cluster, 1)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                await ensure_stream(self.js, replicas=replicas)
                break
            except (nats.errors.Error, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.25)  # the cluster is still electing its meta leader
        self.settings = self._settings()
        self.api = ServiceProcess(["api"], self.settings, self.logs / "api.log")
        self.generators = [
            ServiceProcess(["generator"], self.settings, self.logs / f"generator-{n}.log")
            for n in range(self.options.generators)
        ]
        self.deadletter = ServiceProcess(["deadletter"], self.settings, self.logs / "dl.log")
        await asyncio.gather(
            self.start_api(),
            *(self.start_generator(n) for n in range(len(self.generators))),
            self.start_deadletter(),
        )

    def _start_servers(self) -> None:
        self.postgres.start()
        result = self.postgres.run_script(INIT_SCRIPT, {"SERENADE_DB_PASSWORD": self._password})
        assert result.returncode == 0, result.stderr
        if self.options.cluster:
            self.cluster = NatsCluster(self.root / "nats-cluster", self.options.cluster)
            self.cluster.start()
        else:
            self.nats_server = EmbeddedNats(self.root / "nats")
            self.nats_server.start()

    def _settings(self) -> Settings:
        options = self.options
        return Settings(
            database_url=self.login_dsn,
            nats_url=",".join(self.nats_urls),
            jwt_secret=SECRET,
            data_dir=self.root / "data",
            storage_url=self.storage_root.as_uri(),
            api_host="127.0.0.1",
            api_port=free_port(),
            provider="instant",
            provider_delay_ms=options.provider_delay_ms,
            provider_failure_rate=options.provider_failure_rate,
            max_attempts=options.max_attempts,
            retry_backoff=options.retry_backoff,
            generator_ack_wait=options.ack_wait,
            generator_concurrency=options.generator_concurrency,
            generator_shutdown_grace=options.shutdown_grace,
            payments=options.payments,
            payment_webhook_secret=None if options.payments == "off" else PAYMENT_WEBHOOK_SECRET,
        )

    async def stop(self) -> None:
        """Everything down, quickly; never raises (a drill's own failure is what matters)."""
        started = [getattr(self, name, None) for name in ("api", "deadletter")]
        processes = [p for p in [*started, *self.generators] if isinstance(p, ServiceProcess)]
        with contextlib.suppress(Exception):
            await asyncio.to_thread(stop_all, processes, grace=15)
        if hasattr(self, "nc"):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.close(), 5)
        with contextlib.suppress(Exception):
            if self.cluster is not None:
                await asyncio.to_thread(self.cluster.stop)
            if self.nats_server is not None:
                await asyncio.to_thread(self.nats_server.stop)
        with contextlib.suppress(Exception):
            self.postgres.resume()
            await asyncio.to_thread(self.postgres.stop, mode="immediate")

    # --- services ------------------------------------------------------------------------
    async def start_api(self) -> None:
        await self.api.start().wait_ready()

    async def start_generator(self, index: int = 0) -> None:
        await self.generators[index].start().wait_ready()

    async def start_deadletter(self) -> None:
        await self.deadletter.start().wait_ready()

    def kill_generator(self, index: int = 0) -> None:
        """SIGKILL: a crash at whatever moment it is in."""
        self.generators[index].kill()

    # --- faults on the servers -------------------------------------------------------------
    def crash_postgres(self) -> None:
        """``pg_ctl stop -m immediate``: every backend gone at once, no checkpoint."""
        self.postgres.stop(mode="immediate")

    def start_postgres(self) -> None:
        """Back on the same port: the services hold its address."""
        port = self.postgres.port
        self.postgres.start()
        assert self.postgres.port == port, f"PostgreSQL came back on {self.postgres.port}"

    def kill_nats(self) -> None:
        assert self.nats_server is not None
        self.nats_server.kill()

    def start_nats(self) -> None:
        assert self.nats_server is not None
        port = self.nats_server.port
        self.nats_server.start()
        assert self.nats_server.port == port, f"nats-server came back on {self.nats_server.port}"

    # --- observation ---------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def admin(self) -> AsyncIterator[asyncpg.Connection]:
        """A superuser connection to the serenade database, for checks."""
        conn = await connect(self.admin_dsn, timeout=5)
        try:
            yield conn
        finally:
            await conn.close()

    def rss(self) -> dict[str, int]:
        """Resident memory of each service process, bytes."""
        names = ["api", *(f"generator-{n}" for n in range(len(self.generators))), "deadletter"]
        found = {}
        for name, process in zip(names, self.services, strict=True):
            if process.alive():
                found[name] = psutil.Process(process.pid).memory_info().rss
        return found

    async def connections(self) -> int:
        """The services' connections to PostgreSQL now."""
        async with self.admin() as conn:
            count = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", LOGIN_ROLE
            )
        return int(count)

    def logs_hint(self) -> str:
        return f"logs in {self.logs}"


@contextlib.asynccontextmanager
async def running_stack(root: Path, options: StackOptions) -> AsyncIterator[Stack]:
    stack = Stack(root, options)
    try:
        await stack.start()
        yield stack
    finally:
        await stack.stop()
