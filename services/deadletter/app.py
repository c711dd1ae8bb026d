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
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Final

import asyncpg
from faststream import AckPolicy, Context, ContextRepo, FastStream
from faststream.exceptions import NackMessage
from faststream.nats import JStream, NatsBroker, NatsMessage, PullSub
from faststream.nats.annotations import JsClient

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
from shared.db import create_pool
from shared.events import DEADLETTER_SUBJECTS, STREAM_NAME
from shared.outbox import OutboxRelay
from shared.reminders import ReminderScheduler
from shared.settings import Settings
from shared.stream import ensure_stream

__all__ = ["build_app"]

# One message's work, PostgreSQL and NATS round trips included; well inside the ack wait.
HANDLE_TIMEOUT_SECONDS: Final = 20.0
_POOL_CLOSE_SECONDS: Final = 10.0

_log = logging.getLogger("serenade.deadletter")

Pool = Annotated[asyncpg.Pool, Context("pool")]


def build_app(settings: Settings) -> FastStream:
    """The FastStream app of the dead-letter service, configured by ``settings``."""
    servers = settings.require_nats_servers()
    dsn = settings.require_database_url()
    broker = NatsBroker(
        servers,
        name="serenade-deadletter",
        logger=logging.getLogger("serenade.deadletter.broker"),
        drain_timeout=5,  # drain() with pull subscriptions can hang: keep shutdown bounded
        graceful_timeout=HANDLE_TIMEOUT_SECONDS,
    )
    _subscribe(broker)
    return FastStream(
        broker,
        logger=logging.getLogger("serenade.deadletter.app"),
        lifespan=_lifespan(broker, dsn, reminder_days=settings.reminder_days),
    )


def _subscribe(broker: NatsBroker) -> None:
    # NACK_ON_ERROR: an error never drops a failure (FastStream's default would terminate it);
    # the handlers NAK with a delay themselves, so this only covers what escapes them.
    @broker.subscriber(
        DEADLETTER_SUBJECTS,
        stream=JStream(STREAM_NAME, declare=False),
        durable=ENVELOPE_DURABLE,
        config=envelope_consumer_config(),
        pull_sub=PullSub(batch_size=16, timeout=5.0),
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
        pull_sub=PullSub(batch_size=16, timeout=5.0),
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="deadletter:advisories",
    )
    async def on_advisory(message: NatsMessage, pool: Pool, js: JsClient) -> None:
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
    broker: NatsBroker, dsn: str, *, reminder_days: int
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
        relay = OutboxRelay(dsn, js)
        await relay.start()
        # The housekeeping service also sends occasion reminders (serenade.occasions.upcoming);
        # the guard table makes several running schedulers harmless.
        reminders = ReminderScheduler(pool, days_ahead=reminder_days)
        await reminders.start()
        context.set_global("pool", pool)
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
