"""Drill: the API killed (SIGKILL) during a burst of paid webhooks, with payments on.

Every order's payment is "paid" by a signed ``checkout.session.completed``, each sent several
times over (as Stripe retries, and as a replay would), while the API is killed mid-burst and
started again. Like Stripe, the sender retries every event until it gets a 2xx. Afterwards every
payment is paid, every variant was queued exactly once (one ``variants.requested`` row each in
the outbox, one ``payments.succeeded`` per payment), and every order completes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import stripe

from services.launcher import wait_until
from shared.auth import issue_token
from tests.drills.stack import PAYMENT_WEBHOOK_SECRET, SECRET, Stack, StackOptions, running_stack

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.drills.config import DrillSettings

ORDER = {"recipient_name": "Ada", "occasion": "birthday", "genre": "pop", "variant_count": 3}
COPIES = 3  # each event sent this many times, besides the sender's own retries


def _signed(event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(
        body.decode(), PAYMENT_WEBHOOK_SECRET
    )
    return body, {"Stripe-Signature": header, "Content-Type": "application/json"}


def _paid_event(payment: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "type": "checkout.session.completed",
        "created": int(time.time()),
        "data": {
            "object": {
                "object": "checkout.session",
                "client_reference_id": payment["id"],
                "payment_status": "paid",
                "amount_total": payment["amount"],
                "currency": payment["currency"],
                "payment_intent": f"pi_{uuid.UUID(payment['id']).hex}",
            }
        },
    }


class Sender:
    """Sends one event until a 2xx (a fresh signature each time, as Stripe signs each try)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.tries = 0
        self.failed_tries = 0

    async def deliver(self, client: httpx.AsyncClient, event: dict[str, Any]) -> str:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            self.tries += 1
            body, headers = _signed(event)
            try:
                response = await client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code == 200:
                outcome: str = response.json()["outcome"]
                return outcome
            self.failed_tries += 1
            await asyncio.sleep(0.2)
        raise AssertionError(f"event {event['id']} never delivered")


async def _orders(stack: Stack, count: int) -> list[dict[str, Any]]:
    user = uuid.uuid4()
    headers = {"Authorization": f"Bearer {issue_token(SECRET, user_id=user)}"}
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        made = []
        for _ in range(count):
            response = await client.post("/v1/orders", json=ORDER, headers=headers)
            assert response.status_code == 201, response.text
            made.append(response.json())
    return made


async def _counts(stack: Stack) -> dict[str, Any]:
    async with stack.admin() as conn:
        return dict(
            await conn.fetchrow(
                "SELECT"
                " (SELECT count(*) FROM payments WHERE status = 'paid') AS paid,"
                " (SELECT count(*) FROM outbox WHERE subject = 'serenade.variants.requested')"
                "  AS requested,"
                " (SELECT count(DISTINCT payload->>'variant_id') FROM outbox"
                "  WHERE subject = 'serenade.variants.requested') AS requested_variants,"
                " (SELECT count(*) FROM outbox WHERE subject = 'serenade.payments.succeeded')"
                "  AS succeeded,"
                " (SELECT count(*) FROM song_variants WHERE status = 'complete') AS complete"
            )
        )


async def test_api_killed_during_paid_webhooks_every_payment_queues_its_variants_once(
    tmp_path: Path, drills: DrillSettings, report: Callable[[str, dict[str, Any]], str]
) -> None:
    orders_count = drills.pick(20, 200)
    kills = drills.pick(1, 3)
    async with running_stack(tmp_path, StackOptions(payments="local")) as stack:
        orders = await _orders(stack, orders_count)
        events = [_paid_event(order["payment"]) for order in orders]
        sender = Sender(f"{stack.api_url}/v1/payments/webhook")
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(timeout=10, limits=limits) as client:
            burst = [
                asyncio.create_task(sender.deliver(client, event))
                for _ in range(COPIES)
                for event in events
            ]
            for _ in range(kills):
                await asyncio.sleep(0.3)  # mid-burst
                await asyncio.to_thread(stack.api.kill)
                await asyncio.sleep(0.5)
                await stack.start_api()
            outcomes = await asyncio.gather(*burst)

        async def finished() -> bool:
            return bool((await _counts(stack))["complete"] == orders_count * 3)

        await wait_until(finished, timeout=drills.pick(120, 600), what="every order to complete")
        counts = await _counts(stack)
    report(
        "payment-webhooks",
        {
            "orders": orders_count,
            "events": len(events),
            "deliveries": len(burst),
            "tries": sender.tries,
            "failed_tries": sender.failed_tries,
            "api_kills": kills,
            "paid": counts["paid"],
            "requested": counts["requested"],
            "succeeded": counts["succeeded"],
            "complete": counts["complete"],
        },
    )
    assert counts["paid"] == orders_count
    # Every variant queued once: as many requests as variants, none twice.
    assert counts["requested"] == counts["requested_variants"] == orders_count * 3
    assert counts["succeeded"] == orders_count
    # At most one delivery of each event took effect ("paid"); the others found it applied. A
    # delivery whose answer the kill cut off took effect too, so fewer "paid" answers can come
    # back than payments were paid: the database above is the measure, not the answers.
    assert outcomes.count("paid") <= orders_count
    assert set(outcomes) <= {"paid", "duplicate"}
