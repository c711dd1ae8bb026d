"""``/health``, ``/ready`` and ``/metrics``: for orchestrators and Prometheus."""

from typing import Any

from litestar import Controller, Request, Response, get

from services.api.common.dependencies import Db, Messenger, Metrics
from services.api.common.problems import problem_responses
from services.api.system import health
from services.api.system.schemas import Health

__all__ = ["SystemController"]


class SystemController(Controller):
    path = "/"
    tags = ("system",)

    @get("/health", operation_id="health")
    async def health(self) -> Health:
        """200 while the process runs."""
        return Health(status="ok")

    @get("/ready", operation_id="ready", responses=problem_responses(503))
    async def ready(
        self, request: Request[Any, Any, Any], db: Db, messaging: Messenger
    ) -> Response[Health]:
        """200 when PostgreSQL and NATS answer, 503 otherwise."""
        return await health.readiness(db, messaging, path=request.url.path)

    @get("/metrics", operation_id="metrics", media_type="text/plain")
    async def metrics(self, db: Db, messaging: Messenger, metrics: Metrics) -> Response[bytes]:
        """Prometheus text format (bind privately)."""
        return await health.metrics_page(db, messaging, metrics)
