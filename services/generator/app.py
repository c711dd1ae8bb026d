"""The generator's composition root: ``build_app(settings)`` wires broker, consumer, pipeline,
outbox relay, providers and the intake into one FastStream app.

Resources live in the lifespan, in this order, and go in reverse: the provider (loaded first, so
a bad ``SERENADE_PROVIDER`` stops the start before anything connects), a NATS connection for
administration and the outbox relay, the stream and the durable consumer made to match the code,
the database pool, the relay, the worker slots, and the intake with a NATS connection of its own
(its pulls, acks and heartbeats). The intake (``intake.py``) pulls from the consumer made here in
batches no larger than the free slots; the broker's subscriber on the same subject has no
handler: it describes the channel in the AsyncAPI document and consumes nothing. On shutdown the
hook stops intake, stops fetching, drains the slots (grace, then hand-back), and the lifespan
flushes the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg
import nats
from faststream import AckPolicy, FastStream
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.specification import AsyncAPI

from shared.contract_docs import complete_asyncapi, render_json
from shared.db import Caller, create_pool, transaction
from shared.events import (
    STREAM_NAME,
    SUBJECT_ORDER_COMPLETED,
    SUBJECT_VARIANT_REQUESTED,
    SUBJECT_VARIANT_STATUS,
    OrderCompleted,
    VariantStatusChanged,
)
from shared.outbox import OutboxRelay
from shared.storage import storage_from_url
from shared.stream import ensure_consumer, ensure_stream
from shared.telemetry import telemetry_server

from .consumer import DURABLE, consumer_config
from .deadletters import GeneratorDeadLettered
from .groups import PipelineGroups
from .intake import Intake
from .metrics import TimedProvider
from .pipeline import Pipeline, Policy
from .providers import concurrency_limit, load_provider, slots_for
from .workers import VariantWorkers

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from nats.aio.client import Client as NatsClient

    from shared.settings import Settings

__all__ = ["asyncapi_document", "build_app"]

_STOP_SUBSCRIBER_TIMEOUT = 5.0
_FLUSH_TIMEOUT = 3.0
_log = logging.getLogger("serenade.generator")


@dataclass(frozen=True, slots=True)
class _Work:
    """What the lifespan started and the shutdown hook stops: the slots and their intake."""

    workers: VariantWorkers
    intake: Intake


def build_app(settings: Settings) -> FastStream:
    """The generator service as a FastStream app (run it with ``main.run``)."""
    broker = NatsBroker(
        settings.require_nats_servers(),
        name="serenade-generator",
        max_reconnect_attempts=-1,
        error_cb=_nats_error,
        drain_timeout=2,
        graceful_timeout=_STOP_SUBSCRIBER_TIMEOUT,
        logger=logging.getLogger("serenade.generator.broker"),
        # FastStream's per-message lines ("Received", "Processed") say nothing the variant's own
        # line does not, and "Processed" would come at admission, before the work: debug only.
        log_level=logging.DEBUG,
        description="Generates song variants, tracks their status, dead-letters failures.",
    )
    # No handler: the intake pulls the requests (see intake.py). The subscriber describes the
    # channel (a request is a VariantRequested, or is dead-lettered with its raw text) and,
    # without a handler, FastStream makes no subscription for it.
    broker.subscriber(
        SUBJECT_VARIANT_REQUESTED,
        stream=JStream(STREAM_NAME, declare=False),
        durable=DURABLE,
        config=consumer_config(settings),
        pull_sub=PullSub(batch_size=1, timeout=settings.nats_fetch_timeout),
        ack_policy=AckPolicy.MANUAL,
        title="generator:variants.requested",
        description="A song variant to generate. A message that is not a valid "
        "`VariantRequested` is dead-lettered with its raw text.",
    )
    _document_publications(broker)
    running: list[_Work] = []

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        # The HTTP endpoint (/metrics, /health, /asyncapi.json) first in, last out.
        document = functools.cache(lambda: render_json(asyncapi_document(app)))
        async with (
            telemetry_server(settings, service="generator", asyncapi=document),
            _resources(settings) as work,
        ):
            running.append(work)
            try:
                yield
            finally:
                running.remove(work)

    async def stop_work() -> None:
        if running:  # else the lifespan never got as far as the slots
            await _stop_work(running[0], settings.generator_shutdown_grace)

    app = FastStream(
        broker,
        lifespan=lifespan,
        on_shutdown=[stop_work],
        logger=_log,
        specification=AsyncAPI(
            title="serenade generator",
            version="0.1.0",
            description="Consumes serenade.variants.requested; publishes variant status, "
            "order completion and dead letters (through the transactional outbox).",
        ),
    )
    return app


def asyncapi_document(app: FastStream) -> dict[str, Any]:
    """The generator's AsyncAPI document: its own channels and every other contract subject."""
    return complete_asyncapi(app.schema.to_specification().to_jsonable())


def _document_publications(broker: NatsBroker) -> None:
    """What the generator publishes, for the AsyncAPI document. The events themselves go out
    through the outbox relay, in commit order, not through these publishers."""
    broker.publisher(
        SUBJECT_VARIANT_STATUS,
        schema=VariantStatusChanged,
        title="generator:variants.status",
        description="Every status change of a variant, in the order of the changes.",
    )
    broker.publisher(
        SUBJECT_ORDER_COMPLETED,
        schema=OrderCompleted,
        title="generator:orders.completed",
        description="Once each time an order's last variant becomes final.",
    )
    broker.publisher(
        GeneratorDeadLettered.subject,
        schema=GeneratorDeadLettered,
        title="generator:deadletter.generator",
        description="A request given up on: poison, unknown variant, or attempts exhausted.",
    )


@contextlib.asynccontextmanager
async def _resources(settings: Settings) -> AsyncIterator[_Work]:
    provider = TimedProvider(load_provider(settings))
    storage = storage_from_url(settings.resolved_storage_url)
    dsn = settings.require_database_url()
    async with contextlib.AsyncExitStack() as stack:
        admin = await _connect(settings, "serenade-generator-admin")
        stack.push_async_callback(_close_nats, admin)
        js = admin.jetstream()
        await ensure_stream(js)
        await ensure_consumer(js, STREAM_NAME, consumer_config(settings))
        # One connection per slot at most (a slot holds one only during a transaction).
        pool = await create_pool(dsn, max_size=min(settings.generator_concurrency + 1, 20))
        stack.push_async_callback(_close_pool, pool)
        relay = OutboxRelay(dsn, admin)
        await relay.start()
        stack.push_async_callback(relay.stop)
        stack.push_async_callback(_flush_outbox, relay, pool)
        slots = slots_for(settings.generator_concurrency, provider)
        _log.info(
            "%d variant(s) at once", slots, extra={"provider_limit": concurrency_limit(provider)}
        )
        policy = Policy.from_settings(settings)
        # Claims and completions that arrive together share a transaction.
        groups = PipelineGroups.create(pool, max_attempts=policy.max_attempts, announce=relay.wake)
        workers = VariantWorkers(
            Pipeline(pool, storage, provider, policy, relay.wake, groups), concurrency=slots
        )
        # Pulls, acks and heartbeats on a connection of their own, closed after the slots
        # drained (their last acks and naks go out on it).
        intake_nats = await _connect(settings, "serenade-generator-intake")
        stack.push_async_callback(_close_nats, intake_nats)
        intake = Intake(intake_nats.jetstream(), workers, fetch_timeout=settings.nats_fetch_timeout)
        intake.start()
        # Also when the start fails after this point (the shutdown hook then never runs).
        stack.push_async_callback(intake.stop)
        yield _Work(workers, intake)


async def _stop_work(work: _Work, grace: float) -> None:
    """Stop intake and fetching, then let the slots drain: grace, then hand-back."""
    workers = work.workers
    _log.info("stopping: %d variant(s) in work, grace %.1f s", workers.in_flight, grace)
    workers.close()
    await work.intake.stop()
    await workers.drain(grace=grace)
    _log.info("stopped work", extra={"outcomes": {k.value: v for k, v in workers.outcomes.items()}})


async def _flush_outbox(relay: OutboxRelay, pool: asyncpg.Pool) -> None:
    """Give the relay a moment to publish what this process wrote last (bounded)."""
    relay.wake()
    deadline = time.monotonic() + _FLUSH_TIMEOUT
    while time.monotonic() < deadline:
        try:
            async with transaction(pool, Caller.service()) as conn:
                waiting = await conn.fetchval(
                    "SELECT count(*) FROM outbox WHERE published_at IS NULL"
                )
        except Exception:  # noqa: BLE001 - best effort: the next relay publishes them
            return
        if not waiting:
            return
        relay.wake()
        await asyncio.sleep(0.05)


async def _connect(settings: Settings, name: str) -> NatsClient:
    """A NATS connection that keeps reconnecting and reports problems in one line each."""
    return await nats.connect(
        settings.require_nats_servers(), name=name, max_reconnect_attempts=-1, error_cb=_nats_error
    )


async def _close_pool(pool: asyncpg.Pool) -> None:
    try:
        await asyncio.wait_for(pool.close(), 5.0)
    except TimeoutError:
        pool.terminate()


async def _nats_error(error: Exception) -> None:
    """One line per NATS connection problem (nats-py would log a traceback each time); the
    client keeps reconnecting, so these are warnings."""
    _log.warning("NATS: %s", error or type(error).__name__)


async def _close_nats(connection: NatsClient) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(connection.close(), 3.0)
