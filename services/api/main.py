"""``serenade api``: the app served by uvicorn on the configured address; with
``SERENADE_API_WORKERS`` (``--workers``) above 1, by that many processes (``services.api.workers``).
"""

import ipaddress

from services.api.workers import serve, supervise
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
    if settings.api_workers > 1:
        raise SystemExit(supervise(settings))
    serve(settings)
