"""The small HTTP endpoint of the services that are not HTTP servers (generator, dead-letter):
``/metrics`` (Prometheus text or OpenMetrics), ``/health`` (200 while the event loop answers) and
``/asyncapi.json`` (the service's AsyncAPI document).

The routes are FastStream's ASGI support (``faststream.asgi``: ``AsgiFastStream`` routes by path,
``get`` handlers answer GET and HEAD and 405 to other methods, ``AsgiResponse`` writes the
answer). The ``AsgiFastStream`` here holds only these routes, no broker: the services stay plain
``FastStream`` apps, whose start and bounded stop they drive themselves, and the endpoint is
optional (``SERENADE_METRICS_PORT``) and must outlive the work's drain. So it is served by uvicorn
inside the service's own event loop, started and stopped by the service's lifespan, with
lifespan messages off (nothing to start) and uvicorn's signal capture off: the service owns
SIGTERM and SIGINT and stops this endpoint itself, last, so that a scrape still answers while
work drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Final

import orjson
import uvicorn
from faststream.asgi import AsgiFastStream, AsgiResponse, Request, get
from faststream.asgi.types import ASGIApp
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder

from shared.compat import EmbeddedServer
from shared.settings import Settings
from shared.sockets import listening_socket

__all__ = ["TelemetryServer", "telemetry_app", "telemetry_server"]

_JSON: Final = {"Content-Type": "application/json"}
_STOP_TIMEOUT: Final = 3.0
_log = logging.getLogger("serenade.telemetry")


def telemetry_app(
    *, service: str, registry: CollectorRegistry = REGISTRY, asyncapi: Callable[[], bytes] | None
) -> AsgiFastStream:
    """The endpoint's ASGI app. ``asyncapi`` renders the AsyncAPI document (None: no route).

    Its routes are kept out of any AsyncAPI document (``include_in_schema=False``): the service's
    document, made from its own app, describes its messages, not this endpoint.
    """

    @get(include_in_schema=False)
    async def metrics(request: Request) -> AsgiResponse:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return AsgiResponse(encoder(registry), headers={"Content-Type": content_type})

    health_body = orjson.dumps({"status": "ok", "service": service})

    @get(include_in_schema=False)
    async def health() -> AsgiResponse:
        return AsgiResponse(health_body, headers=_JSON)

    routes: list[tuple[str, ASGIApp]] = [("/metrics", metrics), ("/health", health)]
    if asyncapi is not None:
        render = asyncapi

        @get(include_in_schema=False)
        async def document() -> AsgiResponse:
            return AsgiResponse(render(), headers=_JSON)

        routes.append(("/asyncapi.json", document))
    return AsgiFastStream(asgi_routes=routes, logger=_log)


class TelemetryServer:
    """Serves an ASGI app on ``host``:``port`` (0: any free port) until ``stop``."""

    def __init__(self, app: ASGIApp, *, host: str, port: int) -> None:
        self._app = app
        self._host = host
        self._requested_port = port
        self._server: EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None

    async def start(self) -> None:
        """Bind (an OSError when the address is taken) and serve in the background."""
        sock = listening_socket(self._host, self._requested_port, backlog=128)
        sock.setblocking(False)
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self._app,
            lifespan="off",
            log_config=None,
            log_level=logging.WARNING,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=1,
        )
        self._server = EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="telemetry")

    async def stop(self) -> None:
        server, task = self._server, self._task
        self._server, self._task = None, None
        if server is None or task is None:
            return
        server.should_exit = True
        try:
            await asyncio.wait_for(task, _STOP_TIMEOUT)
        except TimeoutError:
            _log.warning("the telemetry endpoint did not stop in %.0f s", _STOP_TIMEOUT)
        except Exception:  # noqa: BLE001 - stopping: never let the endpoint fail a shutdown
            _log.exception("the telemetry endpoint failed while stopping")


@contextlib.asynccontextmanager
async def telemetry_server(
    settings: Settings,
    *,
    service: str,
    registry: CollectorRegistry = REGISTRY,
    asyncapi: Callable[[], bytes] | None = None,
) -> AsyncIterator[TelemetryServer | None]:
    """The endpoint for the life of the block, when ``SERENADE_METRICS_PORT`` is set.

    A port that cannot be bound is logged as an error and the service runs on without the
    endpoint: metrics are worth less than the work itself (a probe of /health then fails).
    """
    if settings.metrics_port is None:
        yield None
        return
    server = TelemetryServer(
        telemetry_app(service=service, registry=registry, asyncapi=asyncapi),
        host=settings.metrics_host,
        port=settings.metrics_port,
    )
    try:
        await server.start()
    except OSError as error:
        _log.error(
            "cannot serve /metrics on %s:%s: %s",
            settings.metrics_host,
            settings.metrics_port,
            error,
        )
        yield None
        return
    _log.info(
        "telemetry endpoint listening",
        extra={
            "metrics_host": settings.metrics_host,
            "metrics_port": server.port,
            "paths": ["/metrics", "/health", *(["/asyncapi.json"] if asyncapi else [])],
        },
    )
    try:
        yield server
    finally:
        await server.stop()
