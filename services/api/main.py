"""``serenade api``: the app served by uvicorn on the configured address; with
``SERENADE_API_WORKERS`` (``--workers``) above 1, by that many processes (``services.api.workers``).
"""

import gc
import ipaddress
import socket
from pathlib import Path

import uvicorn

from services.api.app import create_app
from services.api.common.compat import request_deadline_protocol
from services.api.live.server import StreamClosingServer
from shared.logs import configure_logging
from shared.settings import PaymentsMode, Settings

__all__ = ["LocalCheckoutExposedError", "require_loopback_for_local_payments", "run", "serve"]


class LocalCheckoutExposedError(RuntimeError):
    """The local checkout pays without money: it must never be reachable from elsewhere."""


def require_loopback_for_local_payments(settings: Settings) -> None:
    """``SERENADE_PAYMENTS=local`` only on a loopback address (development only)."""
    if settings.payments is not PaymentsMode.LOCAL:
        return
    host = settings.api_host
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise LocalCheckoutExposedError(
            f"SERENADE_PAYMENTS=local is for development only: the API must listen on a loopback"
            f" address (127.0.0.1, ::1 or localhost), not {host}"
        )


def run(settings: Settings) -> None:
    """Serve the API until SIGINT or SIGTERM."""
    configure_logging("api")
    require_loopback_for_local_payments(settings)
    if settings.api_workers > 1:
        from services.api.workers import supervise  # noqa: PLC0415 - only with several processes

        raise SystemExit(supervise(settings))
    serve(settings)


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
