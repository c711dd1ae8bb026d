"""``serenade generator``: run the generator until SIGTERM or SIGINT, then stop within bounds."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import signal
from typing import TYPE_CHECKING, cast

from shared.logs import configure_logging

from .app import build_app
from .providers import ProviderUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable

    from faststream import FastStream

    from shared.settings import Settings

__all__ = ["run", "serve"]

_log = logging.getLogger("serenade.generator")
# Beyond the grace period: hand-backs, the broker's drain, the outbox flush, closing pools.
_STOP_OVERHEAD_SECONDS = 15.0


def run(settings: Settings) -> None:
    """Run the generator in this process until it is told to stop."""
    configure_logging("generator")
    app = build_app(settings)
    gc.freeze()  # start-up's objects live as long as the process: out of the full collections
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(
                serve(
                    app,
                    stop_timeout=settings.generator_shutdown_grace + _STOP_OVERHEAD_SECONDS,
                    ready={
                        "provider": settings.provider,
                        "concurrency": settings.generator_concurrency,
                    },
                )
            )
    except ProviderUnavailable as error:
        _log.error("cannot start: %s", error)
        raise SystemExit(f"serenade generator: {error}") from None


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (uvicorn makes the same choice for the API):
    the loop's own bookkeeping was about a third of the generator's CPU on asyncio's."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    return cast("Callable[[], asyncio.AbstractEventLoop]", uvloop.new_event_loop)


async def serve(
    app: FastStream, *, stop_timeout: float, ready: dict[str, object] | None = None
) -> None:
    """FastStream's run, with a stop that cannot hang: lifespan, start, wait for a signal,
    stop (shutdown hooks, then the broker) within ``stop_timeout`` seconds. A signal during the
    start (say, while NATS is still unreachable) abandons the start."""
    stopping = asyncio.Event()
    starting = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if starting is not None and not stopping.is_set() and not ready_seen.is_set():
            starting.cancel()
        stopping.set()

    ready_seen = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    try:
        async with app.lifespan_context():
            await app.start()
            ready_seen.set()
            _log.info("generator ready", extra=ready or {})
            await stopping.wait()
            _log.info("generator stopping")
            try:
                await asyncio.wait_for(app.stop(), stop_timeout)
            except TimeoutError:
                _log.error("the generator did not stop in %.0f s; exiting anyway", stop_timeout)
            except Exception:  # noqa: BLE001 - logged; the process ends either way
                _log.exception("error while stopping the generator")
        _log.info("generator stopped")
    except asyncio.CancelledError:
        if not stopping.is_set():
            raise
        _log.info("generator stopped before it was ready")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)
