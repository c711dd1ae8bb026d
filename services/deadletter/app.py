"""The dead-letter service's composition root: ``build_app(settings)``.

Two durable pull consumers, both never giving up (``max_deliver=-1``) and acknowledged only once
their row is committed: ``deadletter`` on ``serenade.deadletter.>`` in SERENADE, and
``deadletter-advisories`` on SERENADE_ADVISORIES (the "given up" advisories of SERENADE's
consumers). The lifespan owns the PostgreSQL pool and the outbox relay, so replays queued by the
CLI go out even when no API runs.
"""

# No `from __future__ import annotations`: FastStream reads the handlers' annotations at run time.
import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, Final

import asyncpg
from faststream import AckPolicy, Context, ContextRepo, FastStream
from faststream.exceptions import NackMessage
from faststream.nats import JStream, NatsBroker, NatsMessage, PullSub
from faststream.nats.annotations import JsClient
from faststream.nats.prometheus import NatsPrometheusMiddleware
from faststream.specification import AsyncAPI
from prometheus_client import REGISTRY

from services.deadletter.advisories import ADVISORY_PATTERN, ADVISORY_STREAM
from services.deadletter.consumers import (
    ADVISORY_DURABLE,
    ENVELOPE_DURABLE,
    advisory_consumer_config,
    ensure_consumers,
    envelope_consumer_config,
    retry_delay,
)
from services.deadletter.handlers import handle_advisory, store_envelope
from services.deadletter.reminders import ReminderScheduler
from shared.contract_docs import complete_asyncapi, render_json
from shared.db import create_pool
from shared.events import (
    DEADLETTER_SUBJECTS,
    STREAM_NAME,
    SUBJECT_OCCASION_UPCOMING,
    SUBJECT_ORDER_COMPLETED,
    SUBJECT_VARIANT_REQUESTED,
    SUBJECT_VARIANT_STATUS,
    OccasionUpcoming,
    OrderCompleted,
    VariantRequested,
    VariantStatusChanged,
)
from shared.outbox import OutboxRelay
from shared.settings import Settings
from shared.storage import Storage, storage_from_url
from shared.stream import ensure_stream
from shared.telemetry import telemetry_server

__all__ = ["asyncapi_document", "build_app"]

# One message's work, PostgreSQL and NATS round trips included; well inside the ack wait.
HANDLE_TIMEOUT_SECONDS: Final = 20.0
_POOL_CLOSE_SECONDS: Final = 10.0

_log = logging.getLogger("serenade.deadletter")

Pool = Annotated[asyncpg.Pool, Context("pool")]
Relay = Annotated[OutboxRelay, Context("relay")]
AudioStorage = Annotated[Storage, Context("storage")]


def build_app(settings: Settings) -> FastStream:
    """The FastStream app of the dead-letter service, configured by ``settings``."""
    servers = settings.require_nats_servers()
    dsn = settings.require_database_url()
    broker = NatsBroker(
        servers,
        name="serenade-deadletter",
        # Forever, as every serenade client: nats-py gives up after 60 attempts (two minutes)
        # by default, and the service then stayed up, silently consuming nothing.
        max_reconnect_attempts=-1,
        logger=logging.getLogger("serenade.deadletter.broker"),
        drain_timeout=5,  # drain() with pull subscriptions can hang: keep shutdown bounded
        graceful_timeout=HANDLE_TIMEOUT_SECONDS,
        # Messages received, handled, failed and how long they took, per subscriber.
        middlewares=[NatsPrometheusMiddleware(registry=REGISTRY, app_name="serenade-deadletter")],
        description="Keeps every failure in failed_jobs, replays them, sends reminders.",
    )
    _subscribe(broker, fetch_timeout=settings.nats_fetch_timeout)
    _document_publications(broker)
    resources = _lifespan(
        broker, dsn, storage_url=settings.resolved_storage_url, reminder_days=settings.reminder_days
    )
    document = functools.cache(lambda: render_json(asyncapi_document(app)))

    @contextlib.asynccontextmanager
    async def lifespan(context: ContextRepo) -> AsyncIterator[None]:
        # The HTTP endpoint (/metrics, /health, /asyncapi.json) first in, last out.
        async with (
            telemetry_server(settings, service="deadletter", asyncapi=document),
            resources(context),
        ):
            yield

    app = FastStream(
        broker,
        logger=logging.getLogger("serenade.deadletter.app"),
        lifespan=lifespan,
        specification=AsyncAPI(
            title="serenade deadletter",
            version="0.1.0",
            description="Stores every dead letter (serenade.deadletter.<service>) and every "
            "message a consumer of SERENADE gave up on in failed_jobs; replays them and sends "
            "occasion reminders (through the transactional outbox).",
        ),
    )
    return app


# What a captured JetStream advisory holds (the server's JSON; the fields read here).
_ADVISORY_PAYLOAD: Final = {
    "title": "JetStreamAdvisory",
    "type": "object",
    "description": "A nats-server advisory (io.nats.jetstream.advisory.v1.max_deliver or "
    "...terminated) about a message a consumer of SERENADE gave up on.",
    "properties": {
        "type": {"type": "string"},
        "stream": {"type": "string"},
        "consumer": {"type": "string"},
        "stream_seq": {"type": "integer", "minimum": 1},
        "deliveries": {"type": "integer", "minimum": 0},
        "reason": {"type": "string"},
    },
    "required": ["stream_seq"],
}


def asyncapi_document(app: FastStream) -> dict[str, Any]:
    """The dead-letter service's AsyncAPI document: its channels and every contract subject."""
    return complete_asyncapi(
        app.schema.to_specification().to_jsonable(),
        extra_payloads={ADVISORY_PATTERN: _ADVISORY_PAYLOAD},
    )


def _document_publications(broker: NatsBroker) -> None:
    """What the service publishes, for the AsyncAPI document. The events go out through the
    outbox relay, in commit order, not through these publishers."""
    broker.publisher(
        SUBJECT_VARIANT_REQUESTED,
        schema=VariantRequested,
        title="deadletter:variants.requested",
        description="A replayed variant (reason `replay`), queued again by an operator.",
    )
    broker.publisher(
        SUBJECT_VARIANT_STATUS,
        schema=VariantStatusChanged,
        title="deadletter:variants.status",
        description="A variant made pending by a replay, or failed because its request died.",
    )
    broker.publisher(
        SUBJECT_ORDER_COMPLETED,
        schema=OrderCompleted,
        title="deadletter:orders.completed",
        description="An order made final by a variant failed here.",
    )
    broker.publisher(
        SUBJECT_OCCASION_UPCOMING,
        schema=OccasionUpcoming,
        title="deadletter:occasions.upcoming",
        description="Once per order and year, SERENADE_REMINDER_DAYS before the occasion.",
    )


# Messages one subscriber handles at once. Each pull asks for one message (batch_size=1) and
# the workers handle them concurrently: nats-py 2.15+ reports an empty multi-message pull
# (fetch(n > 1)) that times out as the builtin TimeoutError rather than nats.errors.TimeoutError
# (nats-io/nats.py#934, fix pending in #1008), which FastStream 0.7.8's pull loop does not
# expect: its task died and was restarted with an error-level traceback on an idle stack. The
# single-message fetch keeps the documented exception, as it does for the generator.
_WORKERS_PER_SUBSCRIBER: Final = 16


def _subscribe(broker: NatsBroker, *, fetch_timeout: float) -> None:
    pull = PullSub(batch_size=1, timeout=fetch_timeout)

    # NACK_ON_ERROR: an error never drops a failure (FastStream's default would terminate it);
    # the handlers NAK with a delay themselves, so this only covers what escapes them.
    @broker.subscriber(
        DEADLETTER_SUBJECTS,
        stream=JStream(STREAM_NAME, declare=False),
        durable=ENVELOPE_DURABLE,
        config=envelope_consumer_config(),
        pull_sub=pull,
        max_workers=_WORKERS_PER_SUBSCRIBER,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="deadletter:envelopes",
    )
    async def on_envelope(message: NatsMessage, pool: Pool) -> None:
        """Stores each `serenade.deadletter.<service>` envelope as one failed_jobs row."""
        raw = message.raw_message
        await _settle(
            message,
            lambda: store_envelope(
                pool,
                raw.data,
                subject=raw.subject,
                headers=raw.headers,
                stream_seq=raw.metadata.sequence.stream,
            ),
        )

    @broker.subscriber(
        ADVISORY_PATTERN,
        stream=JStream(ADVISORY_STREAM, declare=False),
        durable=ADVISORY_DURABLE,
        config=advisory_consumer_config(),
        pull_sub=pull,
        max_workers=_WORKERS_PER_SUBSCRIBER,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="deadletter:advisories",
    )
    async def on_advisory(
        message: NatsMessage, pool: Pool, js: JsClient, relay: Relay, storage: AudioStorage
    ) -> None:
        """Stores messages that SERENADE's consumers gave up on (max deliveries, terminated)
        and fails the variants whose requests died that way."""
        raw = message.raw_message
        await _settle(
            message,
            lambda: handle_advisory(
                pool,
                js,
                raw.data,
                subject=raw.subject,
                stream_seq=raw.metadata.sequence.stream,
                storage=storage,
                announce=relay.wake,
            ),
        )


async def _settle(message: NatsMessage, work: Callable[[], Awaitable[object]]) -> None:
    """Run ``work``; when it fails, NAK with a growing delay so the message comes back later
    (it is acknowledged only after its row is committed)."""
    try:
        async with asyncio.timeout(HANDLE_TIMEOUT_SECONDS):
            await work()
    except Exception as error:
        deliveries = message.raw_message.metadata.num_delivered or 1
        delay = retry_delay(deliveries)
        _log.warning(
            "not stored yet, retrying in %.1f s: %s",
            delay,
            error if str(error) else type(error).__name__,
            extra={
                "subject": message.raw_message.subject,
                "deliveries": deliveries,
                "error_type": type(error).__name__,
            },
        )
        raise NackMessage(delay=delay) from error


def _lifespan(
    broker: NatsBroker, dsn: str, *, storage_url: str, reminder_days: int
) -> Callable[[ContextRepo], AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(context: ContextRepo) -> AsyncIterator[None]:
        connection = await broker.connect()
        js = connection.jetstream()
        await ensure_stream(js)
        await ensure_consumers(js)
        # min_size 0: the service starts, and keeps its messages waiting, while PostgreSQL is
        # down; the pool opens connections again by itself once it is back.
        pool = await create_pool(dsn, min_size=0, max_size=4, command_timeout=15.0)
        relay = OutboxRelay(dsn, connection)
        await relay.start()
        # The housekeeping service also sends occasion reminders (serenade.occasions.upcoming);
        # the guard table makes several running schedulers harmless.
        reminders = ReminderScheduler(pool, days_ahead=reminder_days, wake=relay.wake)
        await reminders.start()
        context.set_global("pool", pool)
        context.set_global("relay", relay)
        # To delete audio a lost attempt left behind, when a variant is failed here.
        context.set_global("storage", storage_from_url(storage_url))
        try:
            yield
        finally:
            await reminders.stop()
            await relay.stop()
            try:
                async with asyncio.timeout(_POOL_CLOSE_SECONDS):
                    await pool.close()
            except TimeoutError:
                pool.terminate()

    return lifespan
