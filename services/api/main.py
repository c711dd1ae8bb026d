"""``serenade api``: the app served by uvicorn on the configured address."""

import uvicorn

from services.api.app import create_app
from services.api.live.server import StreamClosingServer
from shared.logs import configure_logging
from shared.settings import Settings

__all__ = ["run"]


def run(settings: Settings) -> None:
    """Serve the API until SIGINT or SIGTERM."""
    configure_logging("api")
    app = create_app(settings)
    # Open event streams are ended as shutdown begins; plain uvicorn would wait for them first.
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        lifespan="on",
        log_config=None,
        access_log=False,  # services.api.access_log writes one JSON line per request instead
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    StreamClosingServer(config).run()
