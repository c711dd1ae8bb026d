"""The payment webhook: signatures, repeats, order of events, amounts, unknown payments, size,
and two copies of one event at once. Whatever comes in, money rules hold and nothing loops."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from tests.integration.payments.support import (
    WEBHOOK,
    checkout_completed,
    event,
    outbox_events,
    payment_row,
    post_event,
    signature,
)

if TYPE_CHECKING:
    import asyncpg
    import httpx

    from services.api.payments.worker import PaymentsWorker
    from tests.integration.api.support import World

REQUESTED = "serenade.variants.requested"


async def _paid_events(pool: asyncpg.Pool, order: dict[str, Any]) -> tuple[int, int]:
    requested = await outbox_events(pool, order["id"], REQUESTED)
    succeeded = await outbox_events(pool, order["id"], "serenade.payments.succeeded")
    return len(requested), len(succeeded)


async def _failed_jobs(pool: asyncpg.Pool, payment_id: str | None = None) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT * FROM failed_jobs WHERE service = 'payments' AND"
        " ($1::uuid IS NULL OR payment_id = $1) ORDER BY created_at",
        None if payment_id is None else uuid.UUID(payment_id),
    )
    return rows


async def test_an_order_awaits_payment_and_queues_nothing(
    paid: httpx.AsyncClient, shop: World, pool: asyncpg.Pool
) -> None:
    order = await shop.order(paid, variant_count=5)
    payment = order["payment"]
    assert order["status"] == "awaiting_payment"
    assert payment["kind"] == "order"
    assert payment["status"] == "awaiting"
    assert (payment["amount"], payment["currency"]) == (2900 + 2 * 900, "eur")
    assert payment["checkout_url"] == f"/pay/{payment['id']}"
    assert order["payments"] == [payment]
    assert all(v["status"] == "pending" and v["payment"] == payment for v in order["variants"])
    assert await outbox_events(pool, order["id"], REQUESTED) == []
    assert len(await outbox_events(pool, order["id"], "serenade.orders.created")) == 1
    # The owner reads it back; another user does not see it at all.
    again = await paid.get(f"/v1/orders/{order['id']}", headers=shop.a)
    assert again.json()["payment"] == payment
    assert (await paid.get(f"/v1/orders/{order['id']}", headers=shop.b)).status_code == 404


async def test_a_paid_webhook_queues_the_variants_once_however_often_it_comes(
    paid: httpx.AsyncClient, shop: World, pool: asyncpg.Pool
) -> None:
    order = await shop.order(paid)
    paid_event = checkout_completed(order["payment"])
    first = await post_event(paid, paid_event)
    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "paid"
    for _ in range(2):  # Stripe retries; a replay by anyone holding the body and signature
        again = await post_event(paid, paid_event)
        assert again.status_code == 200
        assert again.json()["outcome"] == "duplicate"
    requested = await outbox_events(pool, order["id"], REQUESTED)
    assert sorted(e["variant_number"] for e in requested) == [1, 2, 3]
    assert {e["reason"] for e in requested} == {"created"}
    [succeeded] = await outbox_events(pool, order["id"], "serenade.payments.succeeded")
    assert succeeded["amount"] == 2900
    assert sorted(succeeded["variant_ids"]) == sorted(v["id"] for v in order["variants"])
    shown = (await paid.get(f"/v1/orders/{order['id']}", headers=shop.a)).json()
    assert shown["status"] == "pending"
    assert shown["payment"]["status"] == "paid"
    assert shown["payment"]["paid_at"] is not None


async def test_two_copies_of_a_paid_event_at_once_have_one_effect(
    paid: httpx.AsyncClient, shop: World, pool: asyncpg.Pool
) -> None:
    order = await shop.order(paid)
    payment = order["payment"]
    same = checkout_completed(payment)
    other = checkout_completed(payment, kind="checkout.session.async_payment_succeeded")
    answers = await asyncio.gather(*(post_event(paid, e) for e in (same, same, other, same)))
    assert [a.status_code for a in answers] == [200] * 4
    assert sorted(a.json()["outcome"] for a in answers).count("paid") == 1
    assert await _paid_events(pool, order) == (3, 1)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        "t=notanumber,v1=abc",
        "t=1700000000",
        "v1=" + "0" * 64,
    ],
    ids=["missing", "empty", "garbage", "bad-timestamp", "no-v1", "no-timestamp"],
)
async def test_a_missing_or_malformed_signature_is_400_and_changes_nothing(
    paid: httpx.AsyncClient, shop: World, pool: asyncpg.Pool, header: str | None
) -> None:
    order = await shop.order(paid)
    body = orjson.dumps(checkout_completed(order["payment"]))
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    response = await paid.post(WEBHOOK, content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (await payment_row(pool, order["payment"]["id"]))["status"] == "awaiting"
    assert await _paid_events(pool, order) == (0, 0)


@pytest.mark.parametrize("case", ["wrong secret", "altered body", "stale", "future"])
async def test_a_wrong_or_stale_signature_is_400_and_changes_nothing(
    paid: httpx.AsyncClient, shop: World, pool: asyncpg.Pool, case: str
) -> None:
    order = await shop.order(paid)
    body = orjson.dumps(checkout_completed(order["payment"]))
    now = int(time.time())
    header = {
        "wrong secret": signature(body, secret="whsec_someone_else"),
        "altered body": signature(body.replace(b'"paid"', b'"unpaid"')),
        "stale": signature(body, timestamp=now - 301),
        "future": signature(body, timestamp=now + 301),
    }[case]
    response = await paid.post(
        WEBHOOK, content=body, headers={"Stripe-Signature": header, "Content-Type": "x"}
    )
    assert response.status_code == 400, response.text
    assert (await payment_row(pool, order["payment"]["id"]))["status"] == "awaiting"
    assert await _paid_events(pool, order) == (0, 0)
    recorded = await pool.fetchval(
        "SELECT count(*) FROM payment_webhook_events WHERE payment_id = $1",
        uuid.UUID(order["payment"]["id"]),
    )
    assert recorded == 0


async def test_a_signed_body_that_is_not_an_event_is_400(paid: httpx.AsyncClient) -> None:
    for body in (b"not json", b"[1, 2]", b'{"id": "evt_1", "type": "x"}'):
        response = await post_event(paid, body)
        assert response.status_code == 400, body


async def test_a_body_of_one_megabyte_is_413(paid: httpx.AsyncClient) -> None:
    body = b'{"id": "evt_big", "pad": "' + b"x" * (1024 * 1024) + b'"}'
    response = await post_event(paid, body)
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("amount", "currency"), [(1, None), (2899, None), (None, "usd")], ids=["1", "2899", "usd"]
)
async def test_an_amount_or_currency_that_does_not_match_leaves_it_unpaid(
    paid: httpx.AsyncClient,
    shop: World,
    pool: asyncpg.Pool,
    amount: int | None,
    currency: str | None,
) -> None:
    order = await shop.order(paid)
    payment = order["payment"]
    mismatch = checkout_completed(payment, amount=amount, currency=currency)
    response = await post_event(paid, mismatch)
    assert response.status_code == 200
    assert (await payment_row(pool, payment["id"]))["status"] == "awaiting"
    assert await _paid_events(pool, order) == (0, 0)
    [row] = await _failed_jobs(pool, payment["id"])
    assert row["error_type"] == "AmountMismatch"
    assert row["event_data"] == mismatch
    # An operator cannot replay it: it is kept for inspection.
    replay = await paid.post(
        f"/v1/admin/failed-jobs/{row['id']}/replay", headers=_service_headers()
    )
    assert replay.status_code == 409


async def test_an_event_for_an_unknown_payment_is_200_and_a_dead_letter(
    paid: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    ghost = {"id": str(uuid.uuid4()), "amount": 2900, "currency": "eur"}
    unknown = checkout_completed(ghost)
    response = await post_event(paid, unknown)
    assert response.status_code == 200
    [row] = await pool.fetch(
        "SELECT * FROM failed_jobs WHERE message_id = $1", f"webhook:{unknown['id']}"
    )
    assert row["error_type"] == "UnknownPayment"
    assert row["service"] == "payments"
    # A repeat does not pile up rows.
    assert (await post_event(paid, unknown)).status_code == 200
    count = await pool.fetchval(
        "SELECT count(*) FROM failed_jobs WHERE message_id = $1", f"webhook:{unknown['id']}"
    )
    assert count == 1


async def test_an_event_naming_no_payment_or_of_another_type_is_ignored(
    paid: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    before = await pool.fetchval("SELECT count(*) FROM failed_jobs")
    foreign = event("checkout.session.completed", {"id": "cs_other", "payment_status": "paid"})
    other_type = event("customer.created", {"id": "cus_1"})
    for each in (foreign, other_type):
        response = await post_event(paid, each)
        assert response.status_code == 200
        assert response.json()["outcome"] == "ignored"
    assert await pool.fetchval("SELECT count(*) FROM failed_jobs") == before


async def test_expired_after_paid_changes_nothing(
    paid: httpx.AsyncClient, shop: World, pool: asyncpg.Pool
) -> None:
    order = await shop.order(paid)
    payment = order["payment"]
    assert (await post_event(paid, checkout_completed(payment))).status_code == 200
    expired = event("checkout.session.expired", {"client_reference_id": payment["id"]})
    assert (await post_event(paid, expired)).status_code == 200
    assert (await payment_row(pool, payment["id"]))["status"] == "paid"
    shown = (await paid.get(f"/v1/orders/{order['id']}", headers=shop.a)).json()
    assert shown["status"] == "pending"
    assert await outbox_events(pool, order["id"], "serenade.orders.cancelled") == []


async def test_refunded_before_paid_never_generates(
    paid: httpx.AsyncClient, shop: World, pool: asyncpg.Pool
) -> None:
    order = await shop.order(paid)
    payment = order["payment"]
    refunded = event(
        "charge.refunded",
        {"id": "ch_1", "metadata": {"payment_id": payment["id"]}, "payment_intent": "pi_x"},
    )
    assert (await post_event(paid, refunded)).status_code == 200
    assert (await post_event(paid, checkout_completed(payment))).status_code == 200
    row = await payment_row(pool, payment["id"])
    assert row["status"] == "refunded"
    assert await outbox_events(pool, order["id"], REQUESTED) == []
    assert len(await outbox_events(pool, order["id"], "serenade.payments.refunded")) == 1
    shown = (await paid.get(f"/v1/orders/{order['id']}", headers=shop.a)).json()
    assert shown["status"] == "cancelled"
    assert {v["status"] for v in shown["variants"]} == {"failed"}


async def test_an_unpaid_checkout_completion_waits_for_the_async_payment(
    paid: httpx.AsyncClient, shop: World, pool: asyncpg.Pool
) -> None:
    order = await shop.order(paid)
    payment = order["payment"]
    pending = checkout_completed(payment, payment_status="unpaid")
    assert (await post_event(paid, pending)).status_code == 200
    assert (await payment_row(pool, payment["id"]))["status"] == "awaiting"
    succeeded = checkout_completed(payment, kind="checkout.session.async_payment_succeeded")
    assert (await post_event(paid, succeeded)).json()["outcome"] == "paid"
    assert await _paid_events(pool, order) == (3, 1)


def _service_headers() -> dict[str, str]:
    from shared.auth import issue_token  # noqa: PLC0415 - keeps the module's imports short
    from shared.db import Role  # noqa: PLC0415
    from tests.integration.api.support import SECRET  # noqa: PLC0415

    return {"Authorization": f"Bearer {issue_token(SECRET, role=Role.SERVICE)}"}


async def _stray_charges(pool: asyncpg.Pool, payment_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT * FROM stray_charges WHERE payment_id = $1", uuid.UUID(payment_id)
    )
    return rows


async def test_a_second_payment_is_refunded_once_and_the_first_is_kept(
    paid: httpx.AsyncClient, shop: World, pool: asyncpg.Pool, worker: PaymentsWorker
) -> None:
    order = await shop.order(paid)
    payment = order["payment"]
    assert (await post_event(paid, checkout_completed(payment))).json()["outcome"] == "paid"
    again = checkout_completed(payment)
    again["data"]["object"]["payment_intent"] = "pi_someone_paid_twice"
    response = await post_event(paid, again)
    assert response.json()["outcome"] == "second payment: refund_pending"
    # Stripe repeats the event, and sends another one about the same charge.
    assert (await post_event(paid, again)).json()["outcome"] == "duplicate"
    other = checkout_completed(payment, kind="checkout.session.async_payment_succeeded")
    other["data"]["object"]["payment_intent"] = "pi_someone_paid_twice"
    assert (await post_event(paid, other)).json()["outcome"] == "second payment: already known"
    [stray] = await _stray_charges(pool, payment["id"])
    assert (stray["status"], stray["amount"], stray["currency"]) == ("refund_pending", 2900, "eur")
    # The local provider's refund settles at once, through its signed charge.refunded.
    await worker.settle_due_refunds()
    await worker.settle_due_refunds()  # nothing due any more
    [stray] = await _stray_charges(pool, payment["id"])
    assert (stray["status"], stray["refund_attempts"]) == ("refunded", 1)
    assert stray["refunded_at"] is not None
    # The first, legitimate payment is untouched: paid, its variants queued once, never failed.
    row = await payment_row(pool, payment["id"])
    assert (row["status"], row["provider_payment_intent"]) == (
        "paid",
        f"pi_{uuid.UUID(payment['id']).hex}",
    )
    assert await _paid_events(pool, order) == (3, 1)
    assert await outbox_events(pool, order["id"], "serenade.payments.refunded") == []
    shown = (await paid.get(f"/v1/orders/{order['id']}", headers=shop.a)).json()
    assert shown["payment"]["status"] == "paid"
    assert all(v["status"] == "pending" for v in shown["variants"])
    assert await _failed_jobs(pool, payment["id"]) == []
