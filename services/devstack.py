"""``serenade dev``: the whole stack in one terminal.

Starts the embedded PostgreSQL and nats-server where no URL is configured, applies migrations,
runs api, generator and deadletter as child processes with prefixed, coloured output, prints a
summary once the API is ready, and on Ctrl-C (or SIGTERM) stops every child and server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from shared.auth import issue_token
from shared.db import Role, connect
from shared.devsecret import load_or_create_dev_secret
from shared.embedded import EmbeddedNats, EmbeddedPostgres
from shared.migrations import apply_migrations

if TYPE_CHECKING:
    from pathlib import Path

    from shared.settings import Settings

__all__ = ["run_dev_stack"]

SERVICES = ("api", "generator", "deadletter")
_COLOURS = {"api": "\033[36m", "generator": "\033[35m", "deadletter": "\033[33m", "dev": "\033[32m"}
_RESET = "\033[0m"
_DATABASE = "serenade"
_STOP_GRACE_SECONDS = 8.0
_METRICS_PORT_OFFSETS = {"generator": 0, "deadletter": 1}


def _say(name: str, line: str, *, stream: IO[str] = sys.stdout, lock: threading.Lock) -> None:
    colour = _COLOURS.get(name, "") if stream.isatty() else ""
    reset = _RESET if colour else ""
    with lock:
        stream.write(f"{colour}{name:>10} |{reset} {line}\n")
        stream.flush()


@dataclass
class _Stack:
    settings: Settings
    data_dir: Path
    postgres: EmbeddedPostgres | None = None
    nats: EmbeddedNats | None = None
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def say(self, line: str) -> None:
        _say("dev", line, lock=self.lock)

    # --- servers -------------------------------------------------------------------------
    def start_servers(self) -> tuple[str, str]:
        database_url = self.settings.database_url
        if not database_url:
            self.postgres = EmbeddedPostgres(self.data_dir / "postgres")
            admin_dsn = self.postgres.start()
            asyncio.run(_ensure_database(admin_dsn, _DATABASE))
            database_url = self.postgres.dsn(_DATABASE)
            self.say(f"embedded PostgreSQL on 127.0.0.1:{self.postgres.port}")
        nats_url = self.settings.nats_url
        if not nats_url:
            self.nats = EmbeddedNats(self.data_dir / "nats")
            nats_url = self.nats.start()
            self.say(f"embedded nats-server (JetStream) on {nats_url}")
        return database_url, nats_url

    def stop_servers(self) -> None:
        if self.nats is not None:
            self.nats.stop()
            self.say("nats-server stopped")
        if self.postgres is not None:
            self.postgres.stop()
            self.say("PostgreSQL stopped")

    # --- children ------------------------------------------------------------------------
    def start_children(self, env: dict[str, str]) -> None:
        for name in SERVICES:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", name],
                env=env | _metrics_env(self.settings, name),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                # Their own session: Ctrl-C reaches this supervisor, which stops them in order.
                start_new_session=True,
            )
            self.children[name] = process
            threading.Thread(target=self._pump, args=(name, process), daemon=True).start()

    def _pump(self, name: str, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            _say(name, raw.decode(errors="replace").rstrip("\n"), lock=self.lock)

    def stop_children(self) -> None:
        running = {name: p for name, p in self.children.items() if p.poll() is None}
        for process in running.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_SECONDS
        for name, process in running.items():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{name} did not stop in {_STOP_GRACE_SECONDS:.0f} s: killing it")
                process.kill()
                process.wait(5)


def _metrics_env(settings: Settings, name: str) -> dict[str, str]:
    """Distinct /metrics ports for the generator and the dead-letter service: the two after the
    API's, or SERENADE_METRICS_PORT and the next one when it is set; with 0 each takes any free
    port (and logs it)."""
    offset = _METRICS_PORT_OFFSETS.get(name)
    if offset is None:
        return {}
    base = settings.metrics_port
    if base is None:
        base = settings.api_port + 1 if settings.api_port else 0
    return {"SERENADE_METRICS_PORT": str(base + offset if base else 0)}


async def _ensure_database(admin_dsn: str, name: str) -> None:
    conn = await connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _migrate(dsn: str) -> list[str]:
    conn = await connect(dsn)
    try:
        return await apply_migrations(conn)
    finally:
        await conn.close()


def _api_base(settings: Settings) -> str:
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host  # noqa: S104
    return f"http://{host}:{settings.api_port}"


def _wait_ready(url: str, api: subprocess.Popen[bytes], timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and api.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own URL
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    return False


def _summary(settings: Settings, secret: str) -> str:
    base = _api_base(settings)
    user = uuid.uuid4()
    bearer = issue_token(secret, role=Role.AUTHENTICATED, user_id=user, ttl_seconds=24 * 3600)
    body = (
        '{"recipient_name": "Ada", "occasion": "birthday", "genre": "pop", '
        '"mood": "joyful", "story": "She taught me to ride a bike."}'
    )
    return "\n".join(
        [
            "",
            "serenade is running",
            f"  API   {base}",
            f"  docs  {base}/schema",
            "",
            "Create an order (a development token for a fresh user, valid 24 h):",
            f"  curl -sS -X POST {base}/v1/orders \\",
            f"    -H 'Authorization: Bearer {bearer}' \\",
            "    -H 'Content-Type: application/json' \\",
            f"    -d '{body}'",
            "",
            "Each variant in the answer has a share_token: once it is complete, its song plays at",
            f"  {base}/s/<share_token>",
            "",
            "Ctrl-C stops everything.",
            "",
        ]
    )


def run_dev_stack(settings: Settings) -> int:
    """Run until Ctrl-C or SIGTERM; return the exit code."""
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    stack = _Stack(settings=settings, data_dir=data_dir)
    stopping = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        database_url, nats_url = stack.start_servers()
        applied = asyncio.run(_migrate(database_url))
        stack.say(f"migrations: {', '.join(applied) if applied else 'up to date'}")
        secret = (
            settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        ) or load_or_create_dev_secret(data_dir)
        env = {
            **os.environ,
            "SERENADE_DATABASE_URL": database_url,
            "SERENADE_NATS_URL": nats_url,
            "SERENADE_JWT_SECRET": secret,
            "SERENADE_DATA_DIR": str(data_dir),
            "SERENADE_STORAGE_URL": settings.resolved_storage_url,
            "PYTHONUNBUFFERED": "1",
        }
        stack.start_children(env)
        api = stack.children["api"]
        if _wait_ready(f"{_api_base(settings)}/ready", api):
            with stack.lock:
                sys.stdout.write(_summary(settings, secret) + "\n")
                sys.stdout.flush()
        else:
            stack.say("the API did not become ready; see its output above")
        while not stopping.wait(0.5):
            if all(process.poll() is not None for process in stack.children.values()):
                stack.say("every service has exited")
                return 1
        stack.say("stopping")
        return 0
    finally:
        stack.stop_children()
        stack.stop_servers()
