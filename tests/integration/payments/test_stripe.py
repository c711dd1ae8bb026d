"""The stripe provider through the official SDK against a local double of Stripe's API:
sessions made with the payment id as idempotency key, made later when Stripe was down at order
time, refunds requested once and dead-lettered when Stripe keeps refusing, then replayed."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from services.api.app import create_app
from shared.auth import issue_token
from shared.db import Role
from shared.lifecycle import fail_variant
from shared.requeue import replayable_job_ids
from tests.helpers import wait_for
from tests.integration.api.conftest import api_settings, serve
from tests.integration.api.live_server import serve_over_http
from tests.integration.api.support import ORDER, SECRET, World
from tests.integration.payments.stripe_double import StripeDouble
from tests.integration.payments.support import (
    WEBHOOK_SECRET,
    checkout_completed,
    event,
    payment_row,
    post_event,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg
    import httpx
    from litestar import Litestar

    from services.api.payments.worker import PaymentsWorker

SERVICE = {"Authorization": f"Bearer {issue_token(SECRET, role=Role.SERVICE)}"}


@pytest.fixture
async def double() -> AsyncIterator[tuple[StripeDouble, str]]:
    stripe = StripeDouble()
    async with serve_over_http(stripe.app()) as server:
        yield stripe, server.url


@pytest.fixture
async def stripe_app(
    double: tuple[StripeDouble, str],
    database_url: str,
    nats_url: str,
    tmp_path: Any,
) -> AsyncIterator[tuple[Litestar, httpx.AsyncClient]]:
    settings = api_settings(
        database_url,
        nats_url,
        tmp_path,
        payments="stripe",
        payment_webhook_secret=WEBHOOK_SECRET,
        stripe_api_key="sk_test_" + "k" * 24,
        stripe_api_base=double[1],
        payment_ttl=1800,
        payment_worker_interval=60.0,
        refund_max_attempts=2,
    )
    app = create_app(settings)
    async with serve(app) as client:
        yield app, client


def _worker(app: Litestar) -> PaymentsWorker:
    found: PaymentsWorker = app.state.payments_worker
    return found


async def test_an_order_gets_a_checkout_session_made_once_with_the_payment_id(
    stripe_app: tuple[Litestar, httpx.AsyncClient],
    double: tuple[StripeDouble, str],
    shop: World,
    pool: asyncpg.Pool,
) -> None:
    _, client = stripe_app
    stripe, _ = double
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = await client.post("/v1/orders", json=ORDER, headers=shop.a | key)
    assert first.status_code == 201, first.text
    payment = first.json()["payment"]
    assert payment["checkout_url"].startswith("https://checkout.stripe.test/c/pay/cs_test_")
    [call] = stripe.sessions
    form = call["form"]
    assert call["idempotency_key"] == payment["id"]
    assert form["client_reference_id"] == payment["id"]
    assert form["metadata[payment_id]"] == payment["id"]
    assert form["metadata[order_id]"] == first.json()["id"]
    assert form["payment_intent_data[metadata][payment_id]"] == payment["id"]
    assert form["line_items[0][price_data][unit_amount]"] == "2900"
    assert form["line_items[0][price_data][currency]"] == "eur"
    row = await payment_row(pool, payment["id"])
    assert int(form["expires_at"]) == int(row["expires_at"].timestamp())
    assert row["expires_at"] - row["created_at"] == dt.timedelta(seconds=1800)
    # The same Idempotency-Key: the same order and payment, no second session.
    again = await client.post("/v1/orders", json=ORDER, headers=shop.a | key)
    assert again.status_code == 200
    assert again.json()["payment"] == payment
    assert len(stripe.sessions) == 1


async def test_stripe_down_at_order_time_the_session_is_made_later(
    stripe_app: tuple[Litestar, httpx.AsyncClient],
    double: tuple[StripeDouble, str],
    shop: World,
    pool: asyncpg.Pool,
) -> None:
    app, client = stripe_app
    stripe, _ = double
    stripe.down = True
    response = await client.post("/v1/orders", json=ORDER, headers=shop.a)
    assert response.status_code == 201, response.text
    payment = response.json()["payment"]
    assert payment["checkout_url"] is None
    assert response.json()["status"] == "awaiting_payment"
    stripe.down = False

    # The worker backs off by the attempts made (one second after the first), then opens it.
    async def opened() -> bool:
        await _worker(app).open_missing_checkouts()
        row = await payment_row(pool, payment["id"])
        return row["checkout_url"] is not None

    await wait_for(opened, timeout=30, interval=0.2, what="the worker to open the checkout")
    shown = (await client.get(f"/v1/orders/{response.json()['id']}", headers=shop.a)).json()
    assert shown["payment"]["checkout_url"].startswith("https://checkout.stripe.test/")
    assert {c["idempotency_key"] for c in stripe.sessions} == {payment["id"]}


async def _paid_then_failed(
    client: httpx.AsyncClient, shop: World, pool: asyncpg.Pool
) -> dict[str, Any]:
    order = await client.post("/v1/orders", json=ORDER | {"variant_count": 1}, headers=shop.a)
    body: dict[str, Any] = order.json()
    assert (await post_event(client, checkout_completed(body["payment"]))).status_code == 200
    async with pool.acquire() as conn, conn.transaction():
        await fail_variant(
            conn, uuid.UUID(body["variants"][0]["id"]), uuid.UUID(body["user_id"]), error="boom"
        )
    return body


def _refunded(payment: dict[str, Any]) -> dict[str, Any]:
    """Stripe's charge.refunded, naming the payment by its payment intent only."""
    return event(
        "charge.refunded",
        {"id": "ch_1", "object": "charge", "payment_intent": f"pi_{uuid.UUID(payment['id']).hex}"},
    )


async def test_a_refund_is_requested_once_and_settled_by_stripes_webhook(
    stripe_app: tuple[Litestar, httpx.AsyncClient],
    double: tuple[StripeDouble, str],
    shop: World,
    pool: asyncpg.Pool,
) -> None:
    app, client = stripe_app
    stripe, _ = double
    order = await _paid_then_failed(client, shop, pool)
    payment = order["payment"]
    await _worker(app).settle_due_refunds()
    await _worker(app).settle_due_refunds()  # nothing due any more
    [call] = stripe.refunds
    assert call["idempotency_key"] == f"refund-{payment['id']}"
    assert call["form"]["payment_intent"] == f"pi_{uuid.UUID(payment['id']).hex}"
    assert call["form"]["amount"] == "2900"
    row = await payment_row(pool, payment["id"])
    assert (row["status"], row["refund_requested_at"] is not None) == ("refund_pending", True)
    assert (await post_event(client, _refunded(payment))).json()["outcome"] == "refunded"
    assert (await payment_row(pool, payment["id"]))["status"] == "refunded"


async def test_a_refund_stripe_keeps_refusing_is_dead_lettered_and_replayable(
    stripe_app: tuple[Litestar, httpx.AsyncClient],
    double: tuple[StripeDouble, str],
    shop: World,
    pool: asyncpg.Pool,
) -> None:
    app, client = stripe_app
    stripe, _ = double
    stripe.refuse_refunds = True
    order = await _paid_then_failed(client, shop, pool)
    payment = order["payment"]
    payment_id = uuid.UUID(payment["id"])
    for _ in range(2):  # refund_max_attempts
        await pool.execute("UPDATE payments SET next_refund_at = now() WHERE id = $1", payment_id)
        await _worker(app).settle_due_refunds()
    [job] = await pool.fetch(
        "SELECT * FROM failed_jobs WHERE payment_id = $1 AND service = 'payments'", payment_id
    )
    assert job["subject"] == "serenade.payments.refund"
    assert "refused" in job["error"]
    assert (await payment_row(pool, payment["id"]))["next_refund_at"] is None
    # The operator replays it once Stripe accepts again.
    stripe.refuse_refunds = False
    replay = await client.post(f"/v1/admin/failed-jobs/{job['id']}/replay", headers=SERVICE)
    assert replay.status_code == 202, replay.text
    await _worker(app).settle_due_refunds()
    assert len([c for c in stripe.refunds if not c.get("refused")]) == 1
    await post_event(client, _refunded(payment))
    assert (await payment_row(pool, payment["id"]))["status"] == "refunded"
    resolved = await pool.fetchval("SELECT resolved_at FROM failed_jobs WHERE id = $1", job["id"])
    assert resolved is not None
    again = await client.post(f"/v1/admin/failed-jobs/{job['id']}/replay", headers=SERVICE)
    assert again.status_code == 409


async def _paid_twice(client: httpx.AsyncClient, shop: World) -> tuple[dict[str, Any], str]:
    """An order paid, then paid again by another payment intent; (the order, that intent)."""
    order = await client.post("/v1/orders", json=ORDER | {"variant_count": 1}, headers=shop.a)
    body: dict[str, Any] = order.json()
    payment = body["payment"]
    assert (await post_event(client, checkout_completed(payment))).json()["outcome"] == "paid"
    second = f"pi_second_{uuid.uuid4().hex}"
    again = checkout_completed(payment)
    again["data"]["object"]["payment_intent"] = second
    outcome = (await post_event(client, again)).json()["outcome"]
    assert outcome == "second payment: refund_pending"
    return body, second


def _charge_refunded(payment: dict[str, Any], intent: str) -> dict[str, Any]:
    """Stripe's charge.refunded for a charge of ``intent``: the charge's metadata names the
    payment it was paid for (the Checkout Session's payment_intent_data), as Stripe sends it."""
    return event(
        "charge.refunded",
        {
            "id": f"ch_{uuid.uuid4().hex}",
            "object": "charge",
            "payment_intent": intent,
            "refunded": True,
            "metadata": {"payment_id": payment["id"]},
        },
    )


async def test_a_second_payment_is_refunded_once_through_stripe_and_the_first_kept(
    stripe_app: tuple[Litestar, httpx.AsyncClient],
    double: tuple[StripeDouble, str],
    shop: World,
    pool: asyncpg.Pool,
) -> None:
    app, client = stripe_app
    stripe, _ = double
    order, second = await _paid_twice(client, shop)
    payment = order["payment"]
    await _worker(app).settle_due_refunds()
    await _worker(app).settle_due_refunds()  # nothing due any more
    stray_id = await pool.fetchval("SELECT id FROM stray_charges WHERE payment_intent = $1", second)
    [call] = stripe.refunds
    assert call["idempotency_key"] == f"refund-{stray_id}"
    assert call["form"]["payment_intent"] == second
    assert call["form"]["amount"] == "2900"
    assert call["form"]["metadata[stray_charge_id]"] == str(stray_id)
    # Stripe's charge.refunded for the second charge, and a copy of it under another id.
    refunded = _charge_refunded(payment, second)
    assert (await post_event(client, refunded)).json()["outcome"] == "second payment refunded"
    assert (await post_event(client, refunded)).json()["outcome"] == "duplicate"
    copy = _charge_refunded(payment, second)
    outcome = (await post_event(client, copy)).json()["outcome"]
    assert outcome == "second payment already refunded"
    assert (
        await pool.fetchval("SELECT status::text FROM stray_charges WHERE id = $1", stray_id)
        == "refunded"
    )
    # The legitimate payment stays paid: never refunded, its variant still to be generated.
    row = await payment_row(pool, payment["id"])
    assert (row["status"], row["refunded_at"], row["refund_attempts"]) == ("paid", None, 0)
    shown = (await client.get(f"/v1/orders/{order['id']}", headers=shop.a)).json()
    assert shown["payment"]["status"] == "paid"
    assert [v["status"] for v in shown["variants"]] == ["pending"]
    refunded_events = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE subject = 'serenade.payments.refunded'"
        " AND payload->>'payment_id' = $1",
        payment["id"],
    )
    assert refunded_events == 0
    # Its own refund, later, is still its own (another idempotency key).
    assert (await post_event(client, _refunded(payment))).json()["outcome"] == "refunded"
    assert (await payment_row(pool, payment["id"]))["status"] == "refunded"


async def test_a_second_payments_refund_stripe_keeps_refusing_is_dead_lettered_and_replayable(
    stripe_app: tuple[Litestar, httpx.AsyncClient],
    double: tuple[StripeDouble, str],
    shop: World,
    pool: asyncpg.Pool,
) -> None:
    app, client = stripe_app
    stripe, _ = double
    stripe.refuse_refunds = True
    order, second = await _paid_twice(client, shop)
    payment = order["payment"]
    stray_id = await pool.fetchval("SELECT id FROM stray_charges WHERE payment_intent = $1", second)
    for _ in range(2):  # refund_max_attempts
        await pool.execute(
            "UPDATE stray_charges SET next_refund_at = now() WHERE id = $1", stray_id
        )
        await _worker(app).settle_due_refunds()
    [job] = await pool.fetch(
        "SELECT * FROM failed_jobs WHERE payment_id = $1 AND service = 'payments'",
        uuid.UUID(payment["id"]),
    )
    assert (job["subject"], job["error_type"]) == ("serenade.payments.refund", "RefundFailed")
    assert job["event_data"]["stray_charge_id"] == str(stray_id)
    assert second in job["error"]
    assert "refused" in job["error"]
    stray = await pool.fetchrow("SELECT * FROM stray_charges WHERE id = $1", stray_id)
    assert (stray["status"], stray["next_refund_at"]) == ("refund_pending", None)
    async with pool.acquire() as conn:
        assert job["id"] in await replayable_job_ids(conn)  # what "replay all" takes
    # The operator replays it once Stripe accepts again.
    stripe.refuse_refunds = False
    replay = await client.post(f"/v1/admin/failed-jobs/{job['id']}/replay", headers=SERVICE)
    assert replay.status_code == 202, replay.text
    await _worker(app).settle_due_refunds()
    [accepted] = [c for c in stripe.refunds if not c.get("refused")]
    assert accepted["form"]["payment_intent"] == second
    await post_event(client, _charge_refunded(payment, second))
    resolved = await pool.fetchval("SELECT resolved_at FROM failed_jobs WHERE id = $1", job["id"])
    assert resolved is not None
    async with pool.acquire() as conn:
        assert job["id"] not in await replayable_job_ids(conn)
    assert (await payment_row(pool, payment["id"]))["status"] == "paid"
    again = await client.post(f"/v1/admin/failed-jobs/{job['id']}/replay", headers=SERVICE)
    assert again.status_code == 409


async def test_a_second_charge_refunded_before_its_paid_event_leaves_the_payment_paid(
    stripe_app: tuple[Litestar, httpx.AsyncClient],
    double: tuple[StripeDouble, str],
    shop: World,
    pool: asyncpg.Pool,
) -> None:
    app, client = stripe_app
    stripe, _ = double
    order = await client.post("/v1/orders", json=ORDER | {"variant_count": 1}, headers=shop.a)
    payment = order.json()["payment"]
    assert (await post_event(client, checkout_completed(payment))).json()["outcome"] == "paid"
    # Someone refunded a second charge in Stripe's dashboard before its paid event came.
    second = f"pi_second_{uuid.uuid4().hex}"
    refunded = _charge_refunded(payment, second)
    assert (await post_event(client, refunded)).json()["outcome"] == "second payment refunded"
    late = checkout_completed(payment)
    late["data"]["object"]["payment_intent"] = second
    assert (await post_event(client, late)).json()["outcome"] == "second payment: already known"
    await _worker(app).settle_due_refunds()
    assert stripe.refunds == []  # already refunded: nothing asked twice
    stray = await pool.fetchrow("SELECT * FROM stray_charges WHERE payment_intent = $1", second)
    assert (stray["status"], stray["next_refund_at"]) == ("refunded", None)
    row = await payment_row(pool, payment["id"])
    assert (row["status"], row["refunded_at"]) == ("paid", None)
