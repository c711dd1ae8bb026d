"""The load driver: users placing orders through ``POST /v1/orders`` at a steady rate, as a
well-behaved client does: every order carries an ``Idempotency-Key``, and a 503 or a lost
connection is retried with the same key, so that a retry can never make a second order.

Every answer is kept (status, latency, whether an error was problem details, whether a stack
trace leaked), and every accepted order (201, or 200 for a replayed key) with its variant count.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.auth import issue_token
from tests.drills.stack import SECRET

__all__ = ["Accepted", "Answer", "LoadDriver", "percentile"]

_OCCASIONS = ("birthday", "anniversary", "wedding", "graduation", "other")
_GENRES = ("pop", "rock", "jazz", "acoustic", "lullaby")
_RETRYABLE = frozenset({409, 503})  # 409: the same key is still in flight


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP exchange. ``status`` None: no answer (timeout or connection lost)."""

    at: float
    seconds: float
    status: int | None
    problem: bool = False
    stack_trace: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    order_id: uuid.UUID
    user_id: uuid.UUID
    variant_count: int
    at: float


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (0..1) of ``values``; 0 when there are none."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[min(98, max(0, round(fraction * 100) - 1))]


def looks_like_a_stack_trace(text: str) -> bool:
    return "Traceback (most recent call last)" in text or 'File "/' in text


@dataclass
class LoadDriver:
    base_url: str
    users: int = 10
    concurrency: int = 8
    # Orders per second (None: as fast as ``concurrency`` allows).
    rate: float | None = None
    variant_counts: tuple[int, ...] = (1, 2, 3)
    # Longer than this without an answer counts as a hang.
    request_timeout: float = 15.0
    # How long one order keeps being retried (503, lost connection) before it is given up.
    retry_for: float = 90.0
    seed: int = 8
    answers: list[Answer] = field(default_factory=list)
    accepted: dict[uuid.UUID, Accepted] = field(default_factory=dict)
    given_up: int = 0
    unexpected: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # noqa: S311 - a load's mix, not a secret
        ids = [uuid.UUID(int=self._random.getrandbits(128), version=4) for _ in range(self.users)]
        self._users = ids
        self._tokens = {
            user: issue_token(SECRET, user_id=user, ttl_seconds=24 * 3600) for user in ids
        }
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._t0 = time.monotonic()
        self._t_end: float | None = None

    @property
    def token_of_first_user(self) -> str:
        return self._tokens[self._users[0]]

    # --- running -------------------------------------------------------------------------
    def start(self, *, orders: int | None = None) -> LoadDriver:
        """Place ``orders`` orders (None: until ``stop``) in the background."""
        self._task = asyncio.create_task(self.run(orders=orders), name="drill-load")
        return self

    async def stop(self) -> None:
        self._stop.set()
        if self._t_end is None:
            self._t_end = time.monotonic()
        if self._task is not None:
            await self._task

    async def wait(self) -> None:
        """Until the ``orders`` given to ``start`` are placed (or given up)."""
        if self._task is not None:
            await self._task

    @property
    def elapsed(self) -> float:
        """Seconds the load ran: until it was asked to stop (or ran out), not until now."""
        return (self._t_end or time.monotonic()) - self._t0

    async def run(self, *, orders: int | None = None) -> None:
        self._t0 = time.monotonic()
        tickets: asyncio.Queue[int | None] = asyncio.Queue(maxsize=self.concurrency)
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=self.request_timeout, limits=limits
        ) as client:

            async def hand_out() -> None:
                placed = 0
                while (orders is None or placed < orders) and not self._stop.is_set():
                    if self.rate:
                        # The set rate of the load: the n-th order goes out at t0 + n / rate.
                        due = self._t0 + placed / self.rate
                        await asyncio.sleep(max(0.0, due - time.monotonic()))
                    await tickets.put(placed)
                    placed += 1
                for _ in range(self.concurrency):
                    await tickets.put(None)

            async def work() -> None:
                while (ticket := await tickets.get()) is not None:
                    await self._place(client, ticket)

            await asyncio.gather(hand_out(), *(work() for _ in range(self.concurrency)))

    async def _place(self, client: httpx.AsyncClient, ticket: int) -> None:
        user = self._users[ticket % len(self._users)]
        count = self._random.choice(self.variant_counts)
        body = {
            "recipient_name": f"Drill {ticket}",
            "occasion": self._random.choice(_OCCASIONS),
            "genre": self._random.choice(_GENRES),
            "mood": "joyful",
            "story": "A drill under load.",
            "variant_count": count,
        }
        headers = {
            "Authorization": f"Bearer {self._tokens[user]}",
            "Idempotency-Key": f"drill-{ticket}-{uuid.uuid4().hex}",
        }
        first = time.monotonic()
        delay = 0.1
        while True:
            answer, payload = await self.exchange(client, "POST", "/v1/orders", body, headers)
            if answer.status in (200, 201) and payload is not None:
                order_id = uuid.UUID(payload["id"])
                self.accepted[order_id] = Accepted(order_id, user, count, answer.at)
                return
            if answer.status is not None and answer.status not in _RETRYABLE:
                self.unexpected.append(f"{answer.status}: {payload}")
                return
            if time.monotonic() - first > self.retry_for or self._stop.is_set():
                self.given_up += 1
                return
            # A client's retry pause (with back-off), not a wait for the test's sake.
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def exchange(
        self,
        client: httpx.AsyncClient,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[Answer, Any]:
        """One request; its answer is recorded."""
        started = time.monotonic()
        at = started - self._t0
        try:
            response = await client.request(method, path, json=body, headers=headers)
        except httpx.TransportError as error:
            answer = Answer(at, time.monotonic() - started, None, error=type(error).__name__)
            self.answers.append(answer)
            return answer, None
        text = response.text
        problem = response.headers.get("content-type", "").startswith("application/problem+json")
        answer = Answer(
            at,
            time.monotonic() - started,
            response.status_code,
            problem=problem,
            stack_trace=looks_like_a_stack_trace(text),
        )
        self.answers.append(answer)
        try:
            payload = response.json()
        except ValueError:
            payload = text[:200]
        return answer, payload

    # --- figures -------------------------------------------------------------------------
    def statuses(self) -> Counter[int | None]:
        return Counter(answer.status for answer in self.answers)

    def server_errors(self, *, allowed: frozenset[int] = frozenset()) -> int:
        """Answers 500 or above that are not in ``allowed`` (a drill allows 503 in an outage)."""
        return sum(
            1
            for a in self.answers
            if a.status is not None and a.status >= 500 and a.status not in allowed
        )

    def hung(self) -> int:
        """Requests that got no answer at all within the client's timeout."""
        return sum(
            1 for a in self.answers if a.status is None and (a.error or "").endswith("Timeout")
        )

    def latencies_ms(self, start: float = 0.0, end: float | None = None) -> list[float]:
        return [
            a.seconds * 1000
            for a in self.answers
            if a.status is not None and a.at >= start and (end is None or a.at < end)
        ]

    def latency_figures(self) -> dict[str, float]:
        values = self.latencies_ms()
        return {
            "p50_ms": round(percentile(values, 0.50), 1),
            "p99_ms": round(percentile(values, 0.99), 1),
            "max_ms": round(max(values, default=0.0), 1),
        }
