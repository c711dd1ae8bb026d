"""The system under test: embedded PostgreSQL and nats-server in a folder of their own, one
migrated database, and serenade's services as child processes (``serenade api`` and friends),
all through ``services.launcher``; and what the bench measures about them: the peak resident
memory and the CPU of each process, the disk's commit latency."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psutil

from services.launcher import (
    EmbeddedNats,
    EmbeddedPostgres,
    ServiceProcess,
    api_url,
    create_database,
    free_port,
    stop_all,
)
from shared.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = [
    "JWT_SECRET",
    "CpuMeter",
    "MemoryWatch",
    "Servers",
    "Stack",
    "fsync_probe",
    "start_servers",
]

JWT_SECRET = "bench-secret-" + "b" * 40


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


async def start_servers(root: Path, *, durable: bool) -> Servers:
    """PostgreSQL (fsync and synchronous commit on when ``durable``) and nats-server."""
    postgres = EmbeddedPostgres(root / "postgres", durable=durable)
    admin_dsn = postgres.start()
    nats = EmbeddedNats(root / "nats")
    try:
        nats_url = nats.start()
        dsn = await create_database(admin_dsn, prefix="bench")
    except BaseException:
        nats.stop()
        postgres.stop()
        raise
    return Servers(postgres, nats, dsn, nats_url)


@dataclass
class Stack:
    """serenade's services against ``servers``; every process started is stopped by ``stop``."""

    servers: Servers
    folder: Path
    # None: the service's own default.
    generator_concurrency: int | None
    # Where the generator writes the audio files (None: ``folder``/storage, on disk).
    audio_root: Path | None = None
    api_port: int = field(default_factory=free_port)
    services: list[ServiceProcess] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        settings = Settings(
            database_url=self.servers.dsn,
            nats_url=self.servers.nats_url,
            jwt_secret=JWT_SECRET,
            data_dir=self.folder / "data",
            storage_url=(self.audio_root or self.folder / "storage").as_uri(),
            provider="instant",
            api_host="127.0.0.1",
            api_port=self.api_port,
        )
        if self.generator_concurrency is None:
            return settings
        return settings.model_copy(update={"generator_concurrency": self.generator_concurrency})

    @property
    def api_url(self) -> str:
        return api_url(self.settings)

    async def _start(
        self, command: str, log_name: str, settings: Settings | None = None
    ) -> ServiceProcess:
        service = ServiceProcess(
            [command], settings or self.settings, self.folder / f"{log_name}.log"
        )
        self.services.append(service.start())
        await service.wait_ready()
        return service

    async def start_api(self) -> ServiceProcess:
        return await self._start("api", "api")

    async def start_api_processes(self, workers: int) -> ServiceProcess:
        """``serenade api`` with ``workers`` processes, on a port of its own (beside the API)."""
        settings = self.settings.model_copy(
            update={"api_port": free_port(), "api_workers": workers}
        )
        return await self._start("api", f"api-{workers}-processes", settings)

    async def start_generator(
        self, name: str | None = None, *, provider_delay_ms: int = 0
    ) -> ServiceProcess:
        count = sum(1 for service in self.services if service.command == ["generator"])
        settings = self.settings.model_copy(update={"provider_delay_ms": provider_delay_ms})
        return await self._start("generator", name or f"generator-{count + 1}", settings)

    def stop_generators(self) -> None:
        """Stop every generator process (the API and the dead-letter service keep running)."""
        stop_all(service for service in self.services if service.command == ["generator"])

    async def start_deadletter(self) -> ServiceProcess:
        return await self._start("deadletter", "deadletter")

    def stop(self) -> None:
        stop_all(self.services)


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


def _own_seconds(pid: int, *, children: bool = True) -> float:
    """CPU seconds of a process and (``children``) of its children: ``serenade api --workers
    N``'s workers. Never the bench's own children: the servers it started are PostgreSQL and
    NATS, counted apart."""
    try:
        process = psutil.Process(pid)
        times = [process.cpu_times()]
        for child in process.children(recursive=True) if children else ():
            with contextlib.suppress(psutil.Error):
                times.append(child.cpu_times())
    except psutil.Error:
        return 0.0
    return float(sum(each.user + each.system for each in times))


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
        own["bench client"] = _own_seconds(os.getpid(), children=False)
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
