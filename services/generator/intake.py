"""The generator's intake: pulls requests from its durable consumer in batches no larger than the
free slots, and hands each batch to the slots in one pass of the loop (so their claims share a
group commit).

nats-py's pull subscription is driven here by hand rather than through FastStream's subscriber:
FastStream's batch loop fetches a fixed batch whatever the free slots are and keeps fetching until
it is full or its timeout passes (that much latency added at low load), and its per-message path
cost the generator about a seventh of its CPU (docs/performance.md, third round).

The rhythm, which adds no latency at any load:
- after an empty pull (and at the start), a long poll for ONE message: nats-py's single-message
  fetch returns as soon as one arrives, or raises ``TimeoutError`` after the fetch timeout;
- after a pull that brought messages, a pull of ``min(free, cap)`` with a short timeout: nats-py
  first asks with ``no_wait``, which returns at once what is available; only when nothing is does
  it wait (at most the short timeout) before the intake falls back to the long poll.
Nothing is fetched while no slot is free or PostgreSQL is unreachable (``VariantWorkers.room``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Final

from nats.errors import ConnectionClosedError, NoRespondersError
from nats.js.errors import APIError, ServiceUnavailableError

from shared.events import STREAM_NAME

from . import metrics
from .consumer import DURABLE
from .delivery import NatsDelivery

if TYPE_CHECKING:
    from nats.js import JetStreamContext

    from .workers import VariantWorkers

__all__ = ["BATCH_CAP", "Intake"]

_log = logging.getLogger("serenade.generator.intake")

# Most requests one pull asks for, whatever the free slots: a pull's messages are handed to the
# slots in one pass of the loop, and a pass that long would hold up every other task.
BATCH_CAP: Final = 256
# How long a pull after a busy one waits for a first message before the intake goes back to the
# long poll. Never latency: a message that arrives meanwhile returns it at once.
FOLLOW_UP_TIMEOUT: Final = 0.1
# After a failed pull: the client reconnects by itself; pull again shortly, then less often.
_BACKOFF: Final = 0.25
_MAX_BACKOFF: Final = 2.0
_STOP_TIMEOUT: Final = 5.0
# While NATS is away or restarting (the client's error callback says so already), or the
# server answers a pull with an error status (say, a consumer's leader changing).
_PULL_TROUBLE = (ConnectionClosedError, ServiceUnavailableError, NoRespondersError, APIError)


class Intake:
    """Feeds ``workers`` from the generator's durable consumer until stopped."""

    def __init__(
        self,
        js: JetStreamContext,
        workers: VariantWorkers,
        *,
        fetch_timeout: float,
        cap: int = BATCH_CAP,
        follow_up_timeout: float = FOLLOW_UP_TIMEOUT,
    ) -> None:
        self._js = js
        self._workers = workers
        self._fetch_timeout = fetch_timeout
        self._cap = cap
        self._follow_up_timeout = follow_up_timeout
        self._task: asyncio.Task[None] | None = None
        self._subscription: JetStreamContext.PullSubscription | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="generator-intake")
        self._task.add_done_callback(_ended)

    async def stop(self) -> None:
        """Stop pulling (a pull in flight is abandoned) and drop the subscription. What
        the abandoned pull still brings is redelivered after the ack wait."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, _STOP_TIMEOUT)
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(subscription.unsubscribe(), _STOP_TIMEOUT)

    async def _run(self) -> None:
        idle = True  # the last pull came back empty: long-poll for one
        backoff = _BACKOFF
        while True:
            free = await self._workers.room()
            if not free:
                return  # closed: the process is stopping
            try:
                subscription = await self._subscribed()
                if idle:
                    messages = await subscription.fetch(1, timeout=self._fetch_timeout)
                else:
                    messages = await subscription.fetch(
                        min(free, self._cap), timeout=self._follow_up_timeout
                    )
            except TimeoutError:  # nats.errors.TimeoutError too: nothing to take
                metrics.PULLS_BY_RESULT("empty").inc()
                idle, backoff = True, _BACKOFF
                continue
            except Exception as error:  # noqa: BLE001 - the intake never stops on its own
                metrics.PULLS_BY_RESULT("error").inc()
                if isinstance(error, _PULL_TROUBLE):
                    _log.warning("cannot pull requests now: %r", error)
                else:
                    _log.exception("pulling requests failed")
                idle = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            backoff = _BACKOFF
            idle = not messages
            metrics.PULLS_BY_RESULT("messages" if messages else "empty").inc()
            if messages:
                metrics.PULL_SIZE.observe(len(messages))
            # All in this pass of the loop: their claims join one group commit.
            for message in messages:
                self._workers.take(NatsDelivery(message))

    async def _subscribed(self) -> JetStreamContext.PullSubscription:
        """The pull subscription on the consumer the lifespan made (bound, never created)."""
        if self._subscription is None:
            self._subscription = await self._js.pull_subscribe_bind(
                durable=DURABLE, stream=STREAM_NAME
            )
        return self._subscription


def _ended(task: asyncio.Task[None]) -> None:
    """The intake ends when the slots close or it is stopped; anything else is a bug that
    leaves the process taking nothing: said loudly."""
    if not task.cancelled() and task.exception() is not None:
        _log.error("the intake stopped: %r", task.exception(), exc_info=task.exception())
