"""Helpers for tests that drive real servers and service processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nats
import orjson

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg

    from shared.settings import Settings

__all__ = ["ServiceProcess", "SubjectRecorder", "settings_env", "wait_for"]


async def wait_for(
    condition: Callable[[], Awaitable[Any]],
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """Await ``condition()`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await condition()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last value: {last!r}")


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process read ``settings``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SERENADE_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        text = str(value)
        if name == "jwt_secret":
            text = settings.require_jwt_secret()
        elif name == "retry_backoff":
            text = ",".join(str(seconds) for seconds in value)
        env[f"SERENADE_{name.upper()}"] = text
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ServiceProcess:
    """``serenade <command>`` as a child process, its output kept in a log file."""

    def __init__(self, command: list[str], settings: Settings, log_path: Path) -> None:
        self.command = command
        self.settings = settings
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, **env_overrides: str) -> ServiceProcess:
        env = settings_env(self.settings) | env_overrides
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", *self.command],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
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

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: a crash."""
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code (SIGKILL after ``timeout``)."""
        assert self.process is not None
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                raise
        return self.process.returncode


class SubjectRecorder:
    """Records every message on a subject (core NATS subscription; sees stream publishes)."""

    def __init__(self) -> None:
        self.messages: list[Msg] = []
        self._nc: NatsClient | None = None

    async def start(self, url: str, subject: str) -> SubjectRecorder:
        self._nc = await nats.connect(url)
        await self._nc.subscribe(subject, cb=self._record)
        await self._nc.flush()
        return self

    async def _record(self, msg: Msg) -> None:
        self.messages.append(msg)

    def payloads(self, subject: str | None = None) -> list[dict[str, Any]]:
        return [
            orjson.loads(msg.data)
            for msg in self.messages
            if subject is None or msg.subject == subject
        ]

    async def stop(self) -> None:
        if self._nc is not None:
            await self._nc.close()
