"""``serenade deadletter``: the dead-letter service until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging

from services.deadletter.app import build_app
from shared.logs import configure_logging
from shared.settings import Settings

__all__ = ["run"]


def run(settings: Settings) -> None:
    """Build the app (settings are checked first) and run it; FastStream stops it cleanly on
    SIGTERM or SIGINT."""
    configure_logging("deadletter")
    app = build_app(settings)
    asyncio.run(app.run(log_level=logging.INFO))
