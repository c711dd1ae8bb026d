"""``serenade dev``: the whole stack in one terminal.

Starts the embedded PostgreSQL and nats-server where no URL is configured, applies migrations,
runs api, generator and deadletter as child processes with prefixed, coloured output, prints a
summary once the API is ready, and on Ctrl-C (or SIGTERM) stops every child and server.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import uuid
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from pydantic import SecretStr

from services.launcher import (
    EmbeddedNats,
    EmbeddedPostgres,
    ServiceNotReadyError,
    ServiceProcess,
    api_url,
    ensure_database,
    migrate,
    stop_all,
)
from shared.auth import issue_token
from shared.db import Role
from shared.devsecret import load_or_create_dev_secret
from shared.settings import PaymentsMode

if TYPE_CHECKING:
    from pathlib import Path

    from shared.settings import Settings

__all__ = ["run_dev_stack"]

SERVICES = ("api", "generator", "deadletter")
_COLOURS = {"api": "\033[36m", "generator": "\033[35m", "deadletter": "\033[33m", "dev": "\033[32m"}
_RESET = "\033[0m"
_DATABASE = "serenade"
_STOP_GRACE_SECONDS = 8.0
_API_READY_SECONDS = 90.0
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
    children: dict[str, ServiceProcess] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def say(self, line: str) -> None:
        _say("dev", line, lock=self.lock)

    # --- servers -------------------------------------------------------------------------
    def start_servers(self) -> tuple[str, str]:
        database_url = self.settings.database_url
        if not database_url:
            self.postgres = EmbeddedPostgres(self.data_dir / "postgres")
            admin_dsn = self.postgres.start()
            database_url = asyncio.run(ensure_database(admin_dsn, _DATABASE))
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
    def start_children(self, settings: Settings) -> None:
        for name in SERVICES:

            def say(line: str, name: str = name) -> None:
                _say(name, line, lock=self.lock)

            child = ServiceProcess([name], settings, on_line=say)
            self.children[name] = child.start(**_metrics_env(self.settings, name))

    def stop_children(self) -> None:
        def killing(child: ServiceProcess) -> None:
            self.say(f"{child.name} did not stop in {_STOP_GRACE_SECONDS:.0f} s: killing it")

        stop_all(self.children.values(), grace=_STOP_GRACE_SECONDS, on_kill=killing)


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


def _local_payments(settings: Settings, data_dir: Path) -> dict[str, Any]:
    """With the local checkout, its webhook secret: generated once, kept in the data dir."""
    if settings.payments is not PaymentsMode.LOCAL or settings.payment_webhook_secret:
        return {}
    secret = load_or_create_dev_secret(data_dir, "payment_webhook_secret")
    return {"payment_webhook_secret": SecretStr(secret)}


def _payment_lines(settings: Settings, base: str) -> list[str]:
    if settings.payments is not PaymentsMode.LOCAL:
        return []
    return [
        "Payments are on (the local test checkout): the order waits for its payment. Open the",
        "checkout_url in the answer (its payment) and press Pay, or from another shell:",
        f"  {base}/pay/<payment_id>",
        "  serenade pay <order_id>",
        "",
    ]


def _summary(settings: Settings, secret: str) -> str:
    base = api_url(settings)
    user = uuid.uuid4()
    bearer = issue_token(secret, role=Role.AUTHENTICATED, user_id=user, ttl_seconds=24 * 3600)
    operator = issue_token(secret, role=Role.SERVICE, ttl_seconds=12 * 3600)
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
            *_payment_lines(settings, base),
            "Operator console (dead letters, orders, the system's health): sign in with this",
            "service_role token (valid 12 h; `serenade token --role service_role` makes more):",
            f"  console  {base}/console",
            f"  token    {operator}",
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
        applied = asyncio.run(migrate(database_url))
        stack.say(f"migrations: {', '.join(applied) if applied else 'up to date'}")
        secret = (
            settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        ) or load_or_create_dev_secret(data_dir)
        child_settings = settings.model_copy(
            update={
                "database_url": database_url,
                "nats_url": nats_url,
                "jwt_secret": SecretStr(secret),
                "data_dir": data_dir,
                "storage_url": settings.resolved_storage_url,
                **_local_payments(settings, data_dir),
            }
        )
        stack.start_children(child_settings)
        try:
            asyncio.run(stack.children["api"].wait_ready(_API_READY_SECONDS))
        except ServiceNotReadyError:
            stack.say("the API did not become ready; see its output above")
        else:
            with stack.lock:
                sys.stdout.write(_summary(settings, secret) + "\n")
                sys.stdout.flush()
        while not stopping.wait(0.5):
            if not any(child.alive() for child in stack.children.values()):
                stack.say("every service has exited")
                return 1
        stack.say("stopping")
        return 0
    finally:
        stack.stop_children()
        stack.stop_servers()
