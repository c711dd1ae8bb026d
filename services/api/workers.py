"""The API served by uvicorn: ``serve`` in this process (``serenade api``, or one worker of
several), ``supervise`` for ``serenade api --workers N``: N processes on one port.

The supervisor (the process ``serenade api`` started as) binds the listening socket once and
starts N worker processes (``multiprocessing``'s spawn: fresh interpreters, nothing forked
mid-flight) that all accept on it; the kernel hands each connection to one of them. A worker
that dies loses only the connections it had accepted: the socket stays open in the others and
in the supervisor, which starts a replacement. SIGTERM or SIGINT to the supervisor sends SIGTERM
to every worker (each ends its event streams, finishes its requests and its lifespan, as one
``serenade api`` does), waits for them within a grace period, kills what is left, and removes
the run's metrics directory. A worker whose supervisor is gone (killed) stops itself.

Why this and not uvicorn's own ``workers=``: its worker processes run a plain
``uvicorn.Server``, not the API's (``StreamClosingServer`` ends event streams first) and take the
app by import string, not the settings the command was given.

What the processes share is what several API replicas share: the database, where the outbox
relay's leader lock and the payments worker's row claims already keep each piece of work to one
process, and NATS, where each process's live feed has a plain subscription of its own, so every
process serves every order's events. Metrics: see ``services.api.common.metrics``.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import uvicorn
from prometheus_client.multiprocess import mark_process_dead

from services.api.app import create_app
from services.api.common.compat import request_deadline_protocol
from services.api.live.server import StreamClosingServer
from shared.logs import configure_logging
from shared.sockets import listening_socket

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess
    from types import FrameType

    from shared.settings import Settings

__all__ = ["STARTUP_FAILURE", "serve", "supervise"]

# A worker's exit code when it stopped before it served (its lifespan failed): another would
# fail the same way, so the supervisor stops instead of restarting it for ever.
STARTUP_FAILURE: Final = 3
# Longer than a worker's own stop: 10 s for open responses, then its lifespan (pool, NATS: 5 s).
STOP_GRACE: Final = 30.0
# A worker that died is replaced no sooner than this after it was started (no busy restart loop).
_RESTART_PAUSE: Final = 1.0
_BACKLOG: Final = 2048
_log = logging.getLogger("serenade.api.workers")


def share_metrics_dir(path: Path) -> None:
    """Make the worker processes started from now on write their metrics into ``path``.

    The one place outside ``shared.settings`` that touches the environment, because
    prometheus_client takes its multiprocess mode from nowhere else: it reads
    ``PROMETHEUS_MULTIPROC_DIR`` when it is first imported, which in a worker is before any of
    our code runs. The workers inherit the variable; nothing in serenade reads it.
    """
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


@dataclass
class _Worker:
    number: int
    process: BaseProcess
    started_at: float


def supervise(settings: Settings) -> int:
    """Run ``settings.api_workers`` API processes until SIGTERM or SIGINT; the exit code."""
    # What every worker would fail on at once is said here, once, as `serenade api` says it.
    settings.require_jwt_secret()
    settings.require_database_url()
    settings.require_nats_servers()
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        _log.info("stopping the API processes", extra={"signal": signal.Signals(signum).name})
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    sock = listening_socket(settings.api_host, settings.api_port, backlog=_BACKLOG)
    metrics_dir = Path(tempfile.mkdtemp(prefix="serenade-api-metrics-"))
    share_metrics_dir(metrics_dir)
    context = multiprocessing.get_context("spawn")
    workers: list[_Worker] = []

    def start(number: int) -> _Worker:
        process = context.Process(
            target=_work,
            args=(settings, sock, metrics_dir, number, os.getpid()),
            name=f"serenade-api-{number}",
        )
        process.start()
        return _Worker(number, process, time.monotonic())

    try:
        workers.extend(start(number) for number in range(1, settings.api_workers + 1))
        _log.info(
            "API processes started",
            extra={
                "workers": settings.api_workers,
                "pids": [worker.process.pid for worker in workers],
                "port": sock.getsockname()[1],
                "metrics_dir": str(metrics_dir),
            },
        )
        while not stop.wait(0.2):
            for index, worker in enumerate(workers):
                if worker.process.is_alive():
                    continue
                code = worker.process.exitcode
                if code == STARTUP_FAILURE:
                    _log.error("an API process could not start; stopping the others")
                    return 1
                if time.monotonic() - worker.started_at < _RESTART_PAUSE:
                    continue
                if worker.process.pid is not None:
                    mark_process_dead(worker.process.pid, str(metrics_dir))  # type: ignore[no-untyped-call]
                workers[index] = start(worker.number)
                _log.error(
                    "an API process died; starting another",
                    extra={
                        "worker": worker.number,
                        "pid": worker.process.pid,
                        "exit_code": code,
                        "new_pid": workers[index].process.pid,
                    },
                )
        return 0
    finally:
        stopping = time.monotonic()
        _stop(workers)
        sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        _log.info(
            "API processes stopped",
            extra={
                "seconds": round(time.monotonic() - stopping, 2),
                "exit_codes": [worker.process.exitcode for worker in workers],
            },
        )


def _stop(workers: list[_Worker]) -> None:
    """SIGTERM to every worker at once; whoever still runs after the grace is killed."""
    for worker in workers:
        if worker.process.is_alive():
            worker.process.terminate()
    deadline = time.monotonic() + STOP_GRACE
    for worker in workers:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():
            _log.error(
                "an API process did not stop in time; killed", extra={"pid": worker.process.pid}
            )
            worker.process.kill()
            worker.process.join()


def _work(
    settings: Settings, sock: socket.socket, metrics_dir: Path, number: int, supervisor: int
) -> None:
    """One worker process: the API on the shared socket until SIGTERM."""
    configure_logging("api", fields={"worker": number, "pid": os.getpid()})
    threading.Thread(target=_stop_when_orphaned, args=(supervisor,), daemon=True).start()
    try:
        started = serve(settings, sockets=[sock], metrics_dir=metrics_dir)
    except Exception:  # noqa: BLE001 - whatever it was, told here, and the supervisor stops
        _log.exception("the API process could not start")
        started = False
    if not started:
        sys.exit(STARTUP_FAILURE)


def _stop_when_orphaned(supervisor: int) -> None:
    """SIGTERM to this worker once its supervisor is gone (it was killed): nobody else would."""
    while os.getppid() == supervisor:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


def serve(
    settings: Settings,
    *,
    sockets: list[socket.socket] | None = None,
    metrics_dir: Path | None = None,
) -> bool:
    """Serve the app in this process until SIGINT or SIGTERM: on the configured address, or on
    ``sockets`` (one worker of several, sharing ``metrics_dir``). Whether it had started."""
    app = create_app(settings, metrics_dir=metrics_dir)
    # What start-up made (modules, the app, its schemas) lives as long as the process: kept out
    # of the collector's full passes, which otherwise pause every request for ~10 ms each.
    gc.freeze()
    # Open event streams are ended as shutdown begins; plain uvicorn would wait for them first.
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        lifespan="on",
        log_config=None,
        access_log=False,  # services.api.common.access_log writes one JSON line per request instead
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=10,
        # A request must arrive whole within a deadline: slow headers or bodies get 408.
        http=request_deadline_protocol(),
    )
    server = StreamClosingServer(config)
    server.run(sockets=sockets)
    return server.started
