"""The system under test: embedded PostgreSQL and nats-server in a folder of their own, one
migrated database, and serenade's services as child processes (``serenade api`` and friends),
with the peak resident memory of each process sampled for the whole run."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import orjson
import psutil

from shared.db import connect
from shared.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from shared.migrations import apply_migrations

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "JWT_SECRET",
    "CpuMeter",
    "MemoryWatch",
    "Servers",
    "Service",
    "Stack",
    "fsync_probe",
    "start_servers",
]

ROOT = Path(__file__).resolve().parent.parent
JWT_SECRET = "bench-secret-" + "b" * 40
_READY_TIMEOUT = 60.0


@dataclass
class Servers:
    """The embedded servers and the migrated database the run uses."""

    postgres: EmbeddedPostgres
    nats: EmbeddedNats
    dsn: str
    nats_url: str

    def stop(self) -> None:
        self.nats.stop()
        self.postgres.stop()


async def _new_database(admin_dsn: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = await connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    conn = await connect(dsn)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    return dsn


async def start_servers(root: Path, *, durable: bool) -> Servers:
    """PostgreSQL (fsync and synchronous commit on when ``durable``) and nats-server."""
    postgres = EmbeddedPostgres(root / "postgres", durable=durable)
    admin_dsn = postgres.start()
    nats = EmbeddedNats(root / "nats")
    try:
        nats_url = nats.start()
        dsn = await _new_database(admin_dsn)
    except BaseException:
        nats.stop()
        postgres.stop()
        raise
    return Servers(postgres, nats, dsn, nats_url)


class Service:
    """``serenade <command>`` as a child process, its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", *self.command],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def logged(self, message: str) -> bool:
        """Whether a JSON log line with this ``message`` was written."""
        if not self.log.exists():
            return False
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{") and message in str(orjson.loads(line).get("message", "")):
                return True
        return False

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or not self.alive():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


async def _until(condition: Callable[[], object], what: str, service: Service) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT
    while time.monotonic() < deadline:
        if not service.alive():
            raise RuntimeError(f"{service.name} exited; see {service.log}")
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}; see {service.log}")


@dataclass
class Stack:
    """serenade's services against ``servers``; every process started is stopped by ``stop``."""

    servers: Servers
    folder: Path
    generator_concurrency: int
    api_port: int = field(default_factory=free_port)
    services: list[Service] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("SERENADE_")}
        return env | {
            "SERENADE_DATABASE_URL": self.servers.dsn,
            "SERENADE_NATS_URL": self.servers.nats_url,
            "SERENADE_JWT_SECRET": JWT_SECRET,
            "SERENADE_DATA_DIR": str(self.folder / "data"),
            "SERENADE_STORAGE_URL": (self.folder / "storage").as_uri(),
            "SERENADE_PROVIDER": "instant",
            "SERENADE_API_HOST": "127.0.0.1",
            "SERENADE_API_PORT": str(self.api_port),
            "SERENADE_GENERATOR_CONCURRENCY": str(self.generator_concurrency),
            "PYTHONUNBUFFERED": "1",
        }

    def _spawn(self, name: str, command: list[str]) -> Service:
        service = Service(name, command, self.env(), self.folder / f"{name}.log")
        self.services.append(service.start())
        return service

    async def start_api(self) -> Service:
        service = self._spawn("api", ["api"])

        async def ready() -> bool:
            try:
                async with httpx.AsyncClient(base_url=self.api_url, timeout=2) as client:
                    return (await client.get("/ready")).status_code == 200
            except httpx.HTTPError:
                return False

        await _until(ready, "the API to be ready", service)
        return service

    async def start_generator(self) -> Service:
        count = sum(1 for s in self.services if s.command == ["generator"])
        service = self._spawn(f"generator-{count + 1}", ["generator"])
        await _until(lambda: service.logged("generator ready"), "a ready generator", service)
        return service

    async def start_deadletter(self) -> Service:
        service = self._spawn("deadletter", ["deadletter"])
        await _until(lambda: service.logged("started successfully"), "deadletter", service)
        return service

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()


@dataclass
class MemoryWatch:
    """Samples the resident memory of named processes (and their children) in a thread."""

    interval: float = 0.2
    peaks: dict[str, int] = field(default_factory=dict)
    _pids: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def watch(self, name: str, pid: int) -> None:
        with self._lock:
            self._pids[name] = pid

    def _sample(self) -> None:
        with self._lock:
            pids = dict(self._pids)
        for name, pid in pids.items():
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                rss = process.memory_info().rss
                for child in process.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        rss += child.memory_info().rss
                self.peaks[name] = max(self.peaks.get(name, 0), rss)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    @contextlib.contextmanager
    def running(self) -> Iterator[MemoryWatch]:
        thread = threading.Thread(target=self._loop, name="memory-watch", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self._sample()


def _busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (every core, every process)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _own_seconds(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


@dataclass
class CpuMeter:
    """Where the CPU goes during a phase: cores used by each named process, by this process
    (the load generator and the floors' clients), and by everything else (PostgreSQL, whose
    backends come and go, and whatever else runs on the machine)."""

    pids: dict[str, int] = field(default_factory=dict)
    # Per phase: wall seconds and CPU seconds by process, summed over its windows.
    _totals: dict[str, tuple[float, dict[str, float]]] = field(default_factory=dict)

    def watch(self, name: str, pid: int) -> None:
        self.pids[name] = pid

    def _snapshot(self) -> tuple[float, float, dict[str, float]]:
        own = {name: _own_seconds(pid) for name, pid in self.pids.items()}
        own["bench client"] = _own_seconds(os.getpid())
        return time.monotonic(), _busy_seconds(), own

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Measure the block as (a window of) phase ``name``."""
        start_wall, start_busy, start_own = self._snapshot()
        yield
        end_wall, end_busy, end_own = self._snapshot()
        used = {key: end_own[key] - start_own.get(key, 0.0) for key in end_own}
        used["postgres and the rest"] = max(0.0, end_busy - start_busy - sum(used.values()))
        wall, before = self._totals.get(name, (0.0, {}))
        self._totals[name] = (
            wall + end_wall - start_wall,
            {key: before.get(key, 0.0) + value for key, value in used.items()},
        )

    @property
    def phases(self) -> dict[str, dict[str, float]]:
        """Cores used by each process during each phase (CPU seconds over wall seconds)."""
        return {
            name: {key: round(value / max(wall, 1e-9), 3) for key, value in used.items()}
            for name, (wall, used) in self._totals.items()
        }

    @staticmethod
    def background(seconds: float = 2.0) -> float:
        """Cores the machine keeps busy while nothing of the bench runs (other work on it)."""
        start_wall, start_busy = time.monotonic(), _busy_seconds()
        time.sleep(seconds)
        return (_busy_seconds() - start_busy) / (time.monotonic() - start_wall)


def fsync_probe(folder: Path, seconds: float = 1.0) -> dict[str, float]:
    """The disk's commit latency as PostgreSQL meets it: 8 KiB written and fdatasync'd in a
    loop for ``seconds``; milliseconds per flush (p50, p99, max) and flushes per second."""
    path = folder / "fsync-probe"
    block = b"\0" * 8192
    latencies: list[float] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            os.pwrite(fd, block, 0)
            os.fdatasync(fd)
            latencies.append(time.perf_counter() - began)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    latencies.sort()
    return {
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3),
        "max_ms": round(latencies[-1] * 1000, 3),
        "per_second": round(len(latencies) / seconds),
    }
