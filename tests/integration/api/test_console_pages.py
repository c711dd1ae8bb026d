"""The console's pages: dead letters (filters, the event, replay one, replay all), orders
(search, the order page, retry) and the system figures, driven through the forms."""

from __future__ import annotations

import html
import re
import uuid
from typing import TYPE_CHECKING

import pytest

from tests.integration.api.console_support import browser_client, csrf_of, sign_in

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import asyncpg
    import httpx
    from litestar import Litestar

    from tests.integration.api.support import World


@pytest.fixture
async def operator(app: Litestar, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A browser signed in to the console."""
    async with browser_client(app) as browser:
        assert (await sign_in(browser)).status_code == 303
        yield browser


async def _dead_letter(
    world: World, variant_id: str | None, *, service: str, error: str = "boom"
) -> uuid.UUID:
    job_id = await world.failed_job(variant_id)
    await world.pool.execute(
        "UPDATE failed_jobs SET service = $2, error = $3 WHERE id = $1", job_id, service, error
    )
    return job_id


async def test_dead_letters_show_error_and_whole_event_escaped(
    operator: httpx.AsyncClient, world: World, client: httpx.AsyncClient
) -> None:
    order = await world.order(client, story="<script>alert('story')</script>")
    variant = order["variants"][0]
    service = f"svc-{uuid.uuid4().hex[:8]}"
    job_id = await _dead_letter(
        world, variant["id"], service=service, error="<img src=x onerror=alert(1)>"
    )
    await world.pool.execute(
        "UPDATE failed_jobs SET event_data = $2 WHERE id = $1",
        job_id,
        {"variant_id": variant["id"], "order_id": order["id"], "note": "</pre><script>x</script>"},
    )

    listing = await operator.get("/console/dead-letters", params={"service": service})
    detail = await operator.get(f"/console/dead-letters/{job_id}")
    order_page = await operator.get(f"/console/orders/{order['id']}")

    for page in (listing, detail):
        assert page.status_code == 200
        assert "<img src=x" not in page.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
        assert "<script>x</script>" not in page.text
        # The whole event, indented JSON.
        assert f"&#34;order_id&#34;: &#34;{order['id']}&#34;" in page.text
        assert f'action="/console/dead-letters/{job_id}/replay"' in page.text
    assert "<script>alert" not in order_page.text
    assert "&lt;script&gt;alert(&#39;story&#39;)&lt;/script&gt;" in order_page.text


async def test_dead_letters_filter_by_unresolved_service_and_subject(
    operator: httpx.AsyncClient, world: World
) -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    open_job = await _dead_letter(world, None, service=service)
    resolved_job = await _dead_letter(world, None, service=service)
    await world.pool.execute(
        "UPDATE failed_jobs SET resolved_at = now() WHERE id = $1", resolved_job
    )
    other_subject = await _dead_letter(world, None, service=service)
    await world.pool.execute(
        "UPDATE failed_jobs SET subject = 'serenade.orders.created' WHERE id = $1", other_subject
    )

    def shown(page: httpx.Response) -> set[str]:
        return set(re.findall(r'data-job-id="([0-9a-f-]+)"', page.text))

    every = await operator.get("/console/dead-letters", params={"service": service})
    unresolved = await operator.get(
        "/console/dead-letters", params={"service": service, "unresolved": "true"}
    )
    requests = await operator.get(
        "/console/dead-letters",
        params={"service": service, "subject": "serenade.variants.requested"},
    )

    assert shown(every) == {str(open_job), str(resolved_job), str(other_subject)}
    assert shown(unresolved) == {str(open_job), str(other_subject)}
    assert shown(requests) == {str(open_job), str(resolved_job)}
    newest_first = re.findall(r'data-job-id="([0-9a-f-]+)"', every.text)
    assert newest_first == [str(other_subject), str(resolved_job), str(open_job)]


async def test_replaying_a_row_from_the_console_queues_its_variant_again(
    operator: httpx.AsyncClient, world: World, client: httpx.AsyncClient
) -> None:
    order = await world.order(client)
    variant = order["variants"][0]
    await world.fail(variant["id"])
    service = f"svc-{uuid.uuid4().hex[:8]}"
    job_id = await _dead_letter(world, variant["id"], service=service)
    listing = await operator.get("/console/dead-letters", params={"service": service})

    replayed = await operator.post(
        f"/console/dead-letters/{job_id}/replay", data={"csrf_token": csrf_of(listing.text)}
    )
    again = await operator.post(
        f"/console/dead-letters/{job_id}/replay", data={"csrf_token": csrf_of(listing.text)}
    )

    assert replayed.status_code == 303
    assert replayed.headers["location"] == f"/console/dead-letters?replayed={job_id}"
    landed = await operator.get(replayed.headers["location"])
    assert f"Replayed {job_id}" in landed.text
    row = await world.pool.fetchrow(
        "SELECT v.status::text, v.attempts, f.replayed_at FROM song_variants v, failed_jobs f"
        " WHERE v.id = $1 AND f.id = $2",
        uuid.UUID(variant["id"]),
        job_id,
    )
    assert row["status"] == "pending"
    assert row["attempts"] == 0
    assert row["replayed_at"] is not None
    events = await world.outbox(order["id"])
    assert events[-1]["type"] == "variants.requested"
    assert events[-1]["reason"] == "replay"
    # The admin API's rule: never a second replay while one is in flight.
    assert again.status_code == 409
    assert "already in flight" in html.unescape(again.text)


async def test_a_replay_without_its_csrf_token_is_refused_and_changes_nothing(
    operator: httpx.AsyncClient, world: World, client: httpx.AsyncClient
) -> None:
    order = await world.order(client)
    variant = order["variants"][0]
    await world.fail(variant["id"])
    job_id = await _dead_letter(world, variant["id"], service="generator")

    missing = await operator.post(f"/console/dead-letters/{job_id}/replay", data={})
    forged = await operator.post(
        f"/console/dead-letters/{job_id}/replay", data={"csrf_token": "x" * 43}
    )
    retry = await operator.post(f"/console/variants/{variant['id']}/retry")
    replay_all = await operator.post("/console/dead-letters/replay-all", data={})

    assert [missing.status_code, forged.status_code, retry.status_code] == [403, 403, 403]
    assert replay_all.status_code == 403
    assert "csrf_token" in missing.text
    assert (
        await world.pool.fetchval(
            "SELECT status::text FROM song_variants WHERE id = $1", uuid.UUID(variant["id"])
        )
        == "failed"
    )
    assert (
        await world.pool.fetchval("SELECT replayed_at FROM failed_jobs WHERE id = $1", job_id)
        is None
    )


async def test_replay_all_asks_first_then_replays_every_replayable_row(
    operator: httpx.AsyncClient, world: World, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    order = await world.order(client)
    for variant in order["variants"][:2]:
        await world.fail(variant["id"])
        await _dead_letter(world, variant["id"], service="generator")
    expected = await pool.fetchval(
        "SELECT count(DISTINCT f.variant_id) FROM failed_jobs f JOIN song_variants v"
        " ON v.id = f.variant_id WHERE f.resolved_at IS NULL AND v.status = 'failed'"
        " AND f.subject = 'serenade.variants.requested'"
    )

    confirm = await operator.get("/console/dead-letters/replay-all")
    assert f"Yes, replay {expected} row(s)" in confirm.text
    done = await operator.post(
        "/console/dead-letters/replay-all", data={"csrf_token": csrf_of(confirm.text)}
    )

    assert done.status_code == 303
    assert done.headers["location"].startswith(f"/console/dead-letters?replayed_all={expected}")
    statuses = await pool.fetch(
        "SELECT status::text FROM song_variants WHERE order_id = $1 AND variant_number <= 2",
        uuid.UUID(order["id"]),
    )
    assert {row["status"] for row in statuses} == {"pending"}
    nothing = await operator.get("/console/dead-letters/replay-all")
    assert "Nothing to replay" in nothing.text


async def test_orders_are_found_by_id_user_and_status(
    operator: httpx.AsyncClient, world: World, client: httpx.AsyncClient
) -> None:
    first = await world.order(client, recipient_name="First")
    second = await world.order(client, recipient_name="Second")
    for variant in second["variants"]:
        await world.fail(variant["id"])

    def found(page: httpx.Response) -> list[str]:
        return re.findall(r'href="/console/orders/([0-9a-f-]+)"', page.text)

    by_id = await operator.get("/console/orders", params={"order_id": first["id"]})
    by_user = await operator.get("/console/orders", params={"user_id": str(world.user_a)})
    failed = await operator.get(
        "/console/orders", params={"user_id": str(world.user_a), "status": "failed"}
    )
    pending = await operator.get(
        "/console/orders", params={"user_id": str(world.user_a), "status": "pending"}
    )
    bad = await operator.get("/console/orders", params={"order_id": "not-a-uuid"})

    assert found(by_id) == [first["id"]]
    assert found(by_user) == [second["id"], first["id"]]
    assert found(failed) == [second["id"]]
    assert found(pending) == [first["id"]]
    assert bad.status_code == 400
    assert "order id is not a UUID" in bad.text


async def test_the_order_page_shows_variants_audio_share_links_and_retries_a_failed_one(
    operator: httpx.AsyncClient, world: World, client: httpx.AsyncClient
) -> None:
    order = await world.order(client)
    done, failed, _ = order["variants"]
    await world.complete(done)
    await world.fail(failed["id"])

    page = await operator.get(f"/console/orders/{order['id']}")

    assert page.status_code == 200
    assert f'href="/s/{done["share_token"]}"' in page.text
    audio = re.findall(r'<audio controls preload="metadata" src="([^"]+)"', page.text)
    assert len(audio) == 1
    media = await client.get(html.unescape(audio[0]))
    assert media.status_code == 200
    assert media.headers["content-type"] == "audio/mpeg"
    assert "boom" in page.text  # the failed variant's last error
    assert page.text.count('action="/console/variants/') == 1

    retried = await operator.post(
        f"/console/variants/{failed['id']}/retry", data={"csrf_token": csrf_of(page.text)}
    )
    assert retried.status_code == 303
    assert retried.headers["location"] == f"/console/orders/{order['id']}?retried=2"
    assert (
        await world.pool.fetchval(
            "SELECT status::text FROM song_variants WHERE id = $1", uuid.UUID(failed["id"])
        )
        == "pending"
    )
    twice = await operator.post(
        f"/console/variants/{failed['id']}/retry", data={"csrf_token": csrf_of(page.text)}
    )
    assert twice.status_code == 409


async def test_an_unknown_order_or_row_is_a_404_page(operator: httpx.AsyncClient) -> None:
    order = await operator.get(f"/console/orders/{uuid.uuid4()}")
    job = await operator.get(f"/console/dead-letters/{uuid.uuid4()}")

    assert order.status_code == 404
    assert job.status_code == 404
    assert "no such order" in order.text
    assert order.headers["content-type"].startswith("text/html")


async def test_the_system_figures_count_outbox_dead_letters_and_finished_work(
    operator: httpx.AsyncClient, world: World, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    await _dead_letter(world, None, service=service)
    await _dead_letter(world, None, service=service)
    order = await world.order(client)
    await world.complete(order["variants"][0])
    finished = await pool.fetchval(
        "SELECT count(*) FROM song_variants WHERE completed_at > now() - interval '5 minutes'"
    )

    page = await operator.get("/console")
    fragment = await operator.get("/console/system/figures")

    assert page.status_code == 200
    assert 'id="figures"' in page.text
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert re.search(
        rf"service={service}\">{service}</a></td><td class=\"num\">2</td>", fragment.text
    )
    shown_5 = re.search(r'id="variants-5">(\d+)<', fragment.text)
    assert shown_5 is not None
    assert int(shown_5.group(1)) >= finished  # others may finish in between, never fewer
    assert re.search(r'id="outbox-depth">\d+<', fragment.text)
    # The API made the stream; the consumer table is there (empty until a service starts).
    assert "Durable consumers" in fragment.text
    assert "JetStream did not answer" not in fragment.text


async def _payment(
    world: World, order_id: str, *, status: str, lapse: str | None = None
) -> uuid.UUID:
    payment_id: uuid.UUID = await world.pool.fetchval(
        "INSERT INTO payments (order_id, kind, status, amount, currency, provider, expires_at,"
        " lapse_reason) VALUES ($1, 'order', $2::payment_status, 2900, 'eur', 'local',"
        " now() + interval '1 day', $3) RETURNING id",
        uuid.UUID(order_id),
        status,
        lapse,
    )
    return payment_id


async def test_orders_are_found_by_payment_status_and_show_their_payments(
    operator: httpx.AsyncClient, world: World, client: httpx.AsyncClient
) -> None:
    unpaid = await world.order(client, recipient_name="Unpaid")
    lapsed = await world.order(client, recipient_name="Lapsed")
    free = await world.order(client, recipient_name="Free")
    payment_id = await _payment(world, unpaid["id"], status="awaiting")
    await _payment(world, lapsed["id"], status="expired", lapse="expired")

    def found(page: httpx.Response) -> list[str]:
        return re.findall(r'href="/console/orders/([0-9a-f-]+)"', page.text)

    mine = {"user_id": str(world.user_a)}
    awaiting = await operator.get("/console/orders", params=mine | {"payment_status": "awaiting"})
    expired = await operator.get("/console/orders", params=mine | {"payment_status": "expired"})
    unpaid_status = await operator.get(
        "/console/orders", params=mine | {"status": "awaiting_payment"}
    )
    cancelled = await operator.get("/console/orders", params=mine | {"status": "cancelled"})
    without = await operator.get("/console/orders", params=mine | {"payment_status": "none"})
    wrong = await operator.get("/console/orders", params={"payment_status": "stolen"})
    page = await operator.get(f"/console/orders/{unpaid['id']}")
    free_page = await operator.get(f"/console/orders/{free['id']}")

    assert found(awaiting) == [unpaid["id"]]
    assert found(expired) == [lapsed["id"]]
    assert found(unpaid_status) == [unpaid["id"]]
    assert found(cancelled) == [lapsed["id"]]
    assert found(without) == [free["id"]]
    assert wrong.status_code == 400
    assert f'data-payment-id="{payment_id}"' in page.text
    assert "29.00 EUR" in page.text
    assert "No payments" in free_page.text
