"""serenade's services as child processes: ``python -m services.cli <command>`` in its own
session, with the environment that makes it read given settings; its output in a log file or
handed line by line to a callback; waited on until ready; stopped with SIGTERM (SIGKILL after a
grace), or killed, paused and resumed (drills)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from pathlib import Path

    from shared.settings import Settings

__all__ = [
    "READY_TIMEOUT",
    "ServiceNotReadyError",
    "ServiceProcess",
    "api_url",
    "settings_env",
    "stop_all",
    "wait_until",
]

READY_TIMEOUT = 60.0
# What each service logs once it takes work (the API is asked over HTTP instead).
_READY_LINES = {"generator": "generator ready", "deadletter": "FastStream app started successfully"}
_KEPT_LINES = 200


class ServiceNotReadyError(RuntimeError):
    """A service exited or did not become ready in time; the message carries its output's tail."""


async def wait_until(
    condition: Callable[[], Any],
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """Call ``condition()`` (awaiting what it returns when awaitable) until it returns something
    truthy, and return that; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}; last value: {last!r}")


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process read ``settings`` (this process's own
    ``SERENADE_`` variables left out)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SERENADE_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
        elif isinstance(value, tuple):
            text = ",".join(str(item) for item in value)
        else:
            text = str(value)
        env[f"SERENADE_{name.upper()}"] = text
    env["PYTHONUNBUFFERED"] = "1"
    return env


def api_url(settings: Settings) -> str:
    """Where the API of ``settings`` answers on this machine."""
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host  # noqa: S104
    return f"http://{host}:{settings.api_port}"


def _answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class ServiceProcess:
    """``serenade <command>`` as a child process.

    Its output goes to ``log_path`` (appended across restarts), or, with ``on_line``, to that
    callback line by line (the last lines are kept for error messages).
    """

    def __init__(
        self,
        command: Sequence[str],
        settings: Settings,
        log_path: Path | None = None,
        *,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        if (log_path is None) == (on_line is None):
            raise ValueError("give a log_path or an on_line callback")
        self.command = list(command)
        self.settings = settings
        self.log_path = log_path
        self.on_line = on_line
        self.process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self._lines: collections.deque[str] = collections.deque(maxlen=_KEPT_LINES)
        self._pump_thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return " ".join(self.command)

    def start(self, **env_overrides: str) -> ServiceProcess:
        env = settings_env(self.settings) | env_overrides
        argv = [sys.executable, "-m", "services.cli", *self.command]
        # Its own session: a Ctrl-C in a terminal reaches the supervisor, which stops it in turn.
        if self.log_path is None:
            self._lines.clear()
            self.process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self._pump_thread = threading.Thread(
                target=self._pump, args=(self.process,), daemon=True
            )
            self._pump_thread.start()
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            self.process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def _pump(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        assert self.on_line is not None
        with process.stdout:
            for raw in process.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                self._lines.append(line)
                self.on_line(line)

    def _ended(self) -> None:
        """Once it has exited: every line it wrote handed over, its pipe closed."""
        if self._pump_thread is not None:
            self._pump_thread.join(5)

    # --- state and output ----------------------------------------------------------------
    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        """Everything it wrote (every start's output when it went to a log file)."""
        if self.log_path is None:
            return "\n".join(self._lines)
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def output(self) -> str:
        """What it wrote since its last start."""
        if self.log_path is None:
            return "\n".join(self._lines)
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as handle:
            handle.seek(self._log_offset)
            return handle.read().decode(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    # --- readiness -----------------------------------------------------------------------
    async def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Until it takes work: the API answers 200 on ``/ready``; the others log that they are
        ready. ServiceNotReadyError when it exits first or the time runs out."""
        service = self.command[0]
        if service == "api":
            url = f"{api_url(self.settings)}/ready"
            await self._wait(lambda: asyncio.to_thread(_answers_200, url), timeout, interval=0.1)
        else:
            needle = _READY_LINES[service]
            await self.wait_logged(needle, timeout)

    async def wait_logged(self, needle: str, timeout: float = READY_TIMEOUT) -> None:
        """Until ``needle`` appears in its output since its last start."""
        await self._wait(lambda: needle in self.output(), timeout, interval=0.1)

    async def _wait(self, condition: Callable[[], Any], timeout: float, interval: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise ServiceNotReadyError(f"{self.name} exited:\n{self.tail()}")
            result = condition()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            if time.monotonic() > deadline:
                raise ServiceNotReadyError(f"{self.name} not ready in {timeout} s:\n{self.tail()}")
            await asyncio.sleep(interval)

    # --- stopping and faults -------------------------------------------------------------
    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; the exit code. After ``timeout`` it is killed and
        ``subprocess.TimeoutExpired`` raised: it did not stop cleanly."""
        assert self.process is not None
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
            self._ended()
            return code
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: a crash at whatever moment it is in."""
        if self.process is not None and self.alive():
            self.process.kill()
            self.process.wait(10)
            self._ended()

    def pause(self) -> None:
        """SIGSTOP: frozen, its connections open."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)


def stop_all(
    processes: Iterable[ServiceProcess],
    *,
    grace: float = 30.0,
    on_kill: Callable[[ServiceProcess], None] | None = None,
) -> None:
    """SIGTERM to every running one at once, then wait for them all; whoever is still running
    after ``grace`` seconds is killed (``on_kill`` told first). Resumes paused ones first."""
    running = [process for process in processes if process.alive()]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            process.resume()
            assert process.process is not None
            process.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in running:
        assert process.process is not None
        try:
            process.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            if on_kill is not None:
                on_kill(process)
            process.kill()
        process._ended()
