"""The one launcher of serenade's stack, for ``serenade dev``, the tests, the drills and the bench:
embedded PostgreSQL and nats-server on free ports in a folder (``servers``), databases made and
migrated (``database``), and the services as child processes, waited on until ready and stopped
cleanly or killed (``process``).

It imports ``shared`` and no service: services are run by their command (``python -m
services.cli api``), never imported.
"""

from services.launcher.database import create_database, ensure_database, migrate, with_database
from services.launcher.process import (
    READY_TIMEOUT,
    ServiceNotReadyError,
    ServiceProcess,
    api_url,
    settings_env,
    stop_all,
    wait_until,
)
from services.launcher.servers import EmbeddedNats, EmbeddedPostgres, EmbeddedServerError, free_port

__all__ = [
    "READY_TIMEOUT",
    "EmbeddedNats",
    "EmbeddedPostgres",
    "EmbeddedServerError",
    "ServiceNotReadyError",
    "ServiceProcess",
    "api_url",
    "create_database",
    "ensure_database",
    "free_port",
    "migrate",
    "settings_env",
    "stop_all",
    "wait_until",
    "with_database",
]
