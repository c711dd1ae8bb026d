"""The API's composition root: ``create_app(settings)`` wires everything, in one place.

What needs no I/O (keys, storage, metrics) is made here; the PostgreSQL pool and the NATS
connection (with the outbox relay) are made in the lifespan, never at import.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined
from litestar import Litestar
from litestar.datastructures import State
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template import TemplateConfig

from services.api.admin.controllers import FailedJobController
from services.api.common.access_log import AccessLogMiddleware
from services.api.common.billing import Billing
from services.api.common.correlation import add_correlation_header
from services.api.common.database import Database
from services.api.common.dependencies import dependencies
from services.api.common.encoding import TYPE_ENCODERS
from services.api.common.messaging import Messaging
from services.api.common.metrics import ApiMetrics, MetricsMiddleware, keep_relay_gauges
from services.api.common.pagination import CursorCodec
from services.api.common.problems import exception_handlers
from services.api.common.signing import UrlSigner
from services.api.console import configure_templates, console_router
from services.api.live import LiveEvents, StreamTuning
from services.api.live.controllers import OrderEventsController
from services.api.orders.controllers import OrderController, VariantController
from services.api.payments.controllers import CheckoutController, PaymentWebhookController
from services.api.payments.worker import PaymentsWorker
from services.api.sharing.controllers import MediaController, ShareController, SharePageController
from services.api.system.controllers import SystemController
from services.api.system.docs_viewer import ViewerAssetsController, viewer_plugin
from shared.background import BackgroundTasks
from shared.db import create_pool
from shared.settings import Settings
from shared.storage import storage_from_url

__all__ = ["CONTROLLERS", "MAX_BODY_BYTES", "create_app"]

# Every route of the API, feature by feature; each handler parses, calls one function, returns.
CONTROLLERS = (
    OrderController,
    OrderEventsController,
    VariantController,
    ShareController,
    SharePageController,
    MediaController,
    FailedJobController,
    PaymentWebhookController,
    CheckoutController,
    SystemController,
    ViewerAssetsController,
)

# An order is a few hundred bytes; anything past this is refused with 413 before parsing.
MAX_BODY_BYTES = 64 * 1024
_log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    stream_tuning: StreamTuning | None = None,
    metrics_dir: Path | None = None,
) -> Litestar:
    """The Litestar app for ``settings`` (``stream_tuning``: event streams' heartbeat and queue;
    ``metrics_dir``: where the API processes of one ``serenade api --workers N`` share metrics)."""
    metrics = ApiMetrics(metrics_dir)
    return Litestar(
        route_handlers=[*CONTROLLERS, console_router(settings)],
        state=_configure_state(settings, metrics, stream_tuning or StreamTuning()),
        dependencies=dependencies(),
        lifespan=[_lifespan],
        exception_handlers=exception_handlers(),
        middleware=[AccessLogMiddleware, DefineMiddleware(MetricsMiddleware, metrics=metrics)],
        before_send=[add_correlation_header],
        type_encoders=TYPE_ENCODERS,
        openapi_config=_configure_openapi(),
        template_config=_configure_templates(),
        request_max_body_size=MAX_BODY_BYTES,
        logging_config=None,
        debug=False,
    )


def _configure_state(settings: Settings, metrics: ApiMetrics, tuning: StreamTuning) -> State:
    secret = settings.require_jwt_secret()
    return State(
        {
            "settings": settings,
            "jwt_secret": secret,
            "signer": UrlSigner(
                secret, ttl_seconds=settings.signed_url_ttl, public_url=settings.public_url
            ),
            "cursors": CursorCodec(secret),
            "storage": storage_from_url(settings.resolved_storage_url),
            "metrics": metrics,
            "stream_tuning": tuning,
            "billing": Billing.from_settings(settings),
        }
    )


def _configure_templates() -> TemplateConfig[JinjaTemplateEngine]:
    """One Jinja engine for every HTML page: ``services/api/templates/<feature>/<page>.html``.

    Autoescape is on for every template, so a value from the database is always escaped;
    an undefined name is an error rather than an empty string.
    """
    environment = Environment(
        loader=PackageLoader("services.api", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    engine = JinjaTemplateEngine.from_environment(environment)
    configure_templates(engine)  # the console's filters
    return TemplateConfig(instance=engine)


def _configure_openapi() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="serenade",
        version="1.0.0",
        description="Personalised songs: orders, per-variant generation, sharing, dead letters. "
        "Errors are RFC 9457 problem details (application/problem+json).",
        path="/schema",
        render_plugins=[viewer_plugin()],
        components=Components(
            security_schemes={
                "BearerToken": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description="HS256 JWT shaped like Supabase's (role authenticated with "
                    "aud authenticated, or service_role).",
                )
            }
        ),
        use_handler_docstrings=True,
    )


@contextlib.asynccontextmanager
async def _lifespan(app: Litestar) -> AsyncIterator[None]:
    """The pool, the NATS link (with the relay) and the live event feed for the life of the app."""
    settings: Settings = app.state.settings
    dsn = settings.require_database_url()
    # min_size=0: the API starts (and answers 503) while PostgreSQL is still unreachable.
    pool = await create_pool(dsn, min_size=0, max_size=10, command_timeout=10.0)
    messaging = Messaging(settings.require_nats_servers(), dsn)
    app.state.messaging = messaging
    app.state.database = Database(
        pool, messaging.wake_relay, group_committed=app.state.metrics.record_group
    )
    live = LiveEvents(settings.require_nats_servers(), app.state.stream_tuning)
    app.state.live = live
    payments = PaymentsWorker(
        app.state.database,
        app.state.billing,
        interval=settings.payment_worker_interval,
        refund_max_attempts=settings.refund_max_attempts,
    )
    app.state.payments_worker = payments
    await messaging.start()
    await live.start()
    await payments.start()
    gauges = BackgroundTasks()
    metrics: ApiMetrics = app.state.metrics
    if metrics.multiprocess:
        gauges.start(keep_relay_gauges(metrics, lambda: messaging.relay), name="api-relay-gauges")
    try:
        yield
    finally:
        await gauges.stop()
        await payments.stop()
        if app.state.billing.provider is not None:
            await app.state.billing.provider.close()
        await live.stop()  # ends open event streams first
        await messaging.stop()
        try:
            await asyncio.wait_for(pool.close(), 5)
        except Exception:  # noqa: BLE001 - shutting down: never hang on a dead server
            _log.warning("closing the pool failed or took too long; terminating it")
            pool.terminate()
