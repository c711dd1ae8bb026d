"""``serenade api``: the app served by uvicorn on the configured address."""

import logging

import uvicorn

from services.api.app import create_app
from shared.settings import Settings

__all__ = ["run"]


def run(settings: Settings) -> None:
    """Serve the API until SIGINT or SIGTERM."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        lifespan="on",
        log_config=None,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
