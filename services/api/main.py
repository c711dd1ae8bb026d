"""``serenade api``: the app served by uvicorn on the configured address."""

import gc
import ipaddress

import uvicorn

from services.api.app import create_app
from services.api.common.compat import request_deadline_protocol
from services.api.live.server import StreamClosingServer
from shared.logs import configure_logging
from shared.settings import PaymentsMode, Settings

__all__ = ["LocalCheckoutExposedError", "require_loopback_for_local_payments", "run"]


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
    app = create_app(settings)
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
    StreamClosingServer(config).run()
