"""The dead-letter table for operators: list, read, replay."""

from __future__ import annotations

import math
import uuid
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import httpx

    from tests.integration.api.support import World

JOB_FIELDS = {
    "id",
    "subject",
    "service",
    "event_data",
    "error_type",
    "error",
    "attempts",
    "message_id",
    "correlation_id",
    "created_at",
    "replayed_at",
    "resolved_at",
}


@pytest.fixture
async def jobs(world: World) -> list[uuid.UUID]:
    """Three rows, oldest first: unresolved, resolved, unresolved. They are dated after every
    row an earlier test made (the session shares one table), so they lead the listing."""
    # Seconds from now to the newest row so far (an earlier use of this fixture dated its
    # rows in the future); a minute apart past it, so truncation to whole seconds cannot tie.
    newest = await world.pool.fetchval(
        "SELECT extract(epoch FROM coalesce(max(created_at), now()) - now())::float8"
        " FROM failed_jobs"
    )
    ahead = max(0, math.ceil(newest))
    made = []
    for step, resolved in ((0, False), (1, True), (2, False)):
        # A negative age dates the row in the future, after every row there is.
        age = -(ahead + 60 * (step + 1))
        made.append(await world.failed_job(None, resolved=resolved, age_seconds=age))
    return made


async def test_failed_jobs_are_listed_newest_first_in_pages(
    client: httpx.AsyncClient, service_headers: dict[str, str], jobs: list[uuid.UUID]
) -> None:
    first = (await client.get("/v1/admin/failed-jobs?limit=2", headers=service_headers)).json()
    second = (
        await client.get(
            "/v1/admin/failed-jobs",
            params={"limit": 2, "cursor": first["next_cursor"]},
            headers=service_headers,
        )
    ).json()

    assert [item["id"] for item in first["items"]] == [str(jobs[2]), str(jobs[1])]
    assert second["items"][0]["id"] == str(jobs[0])
    assert set(first["items"][0]) == JOB_FIELDS


async def test_unresolved_filter_keeps_rows_without_resolved_at(
    client: httpx.AsyncClient, service_headers: dict[str, str], jobs: list[uuid.UUID]
) -> None:
    page = (
        await client.get("/v1/admin/failed-jobs?unresolved=true&limit=2", headers=service_headers)
    ).json()

    assert [item["id"] for item in page["items"]] == [str(jobs[2]), str(jobs[0])]
    assert all(item["resolved_at"] is None for item in page["items"])


async def test_a_failed_job_is_read_by_id(
    client: httpx.AsyncClient, service_headers: dict[str, str], world: World
) -> None:
    job = await world.failed_job(uuid.uuid4())

    found = await client.get(f"/v1/admin/failed-jobs/{job}", headers=service_headers)
    missing = await client.get(f"/v1/admin/failed-jobs/{uuid.uuid4()}", headers=service_headers)

    assert found.status_code == 200
    assert found.json()["event_data"]["type"] == "variants.requested"
    assert found.json()["correlation_id"] == "corr-1"
    assert missing.status_code == 404


async def test_raw_text_events_are_shown_as_text(
    client: httpx.AsyncClient, service_headers: dict[str, str], world: World
) -> None:
    job = await world.pool.fetchval(
        "INSERT INTO failed_jobs (subject, service, event_text, error_type, error, message_id)"
        " VALUES ('serenade.variants.requested', 'generator', 'not json {', 'ValueError', 'bad',"
        " $1) RETURNING id",
        uuid.uuid4().hex,
    )

    found = (await client.get(f"/v1/admin/failed-jobs/{job}", headers=service_headers)).json()

    assert found["event_data"] == "not json {"


async def test_replay_requeues_the_failed_variant_and_marks_the_row(
    client: httpx.AsyncClient, service_headers: dict[str, str], world: World
) -> None:
    order = await world.order(client, variant_count=1)
    variant = order["variants"][0]
    await world.fail(variant["id"])
    job = await world.failed_job(variant["id"])

    response = await client.post(
        f"/v1/admin/failed-jobs/{job}/replay",
        headers=service_headers | {"X-Correlation-Id": "replay-1"},
    )

    assert response.status_code == 202
    assert response.json()["replayed_at"] is not None
    state = await world.pool.fetchrow(
        "SELECT status::text, attempts FROM song_variants WHERE id = $1", uuid.UUID(variant["id"])
    )
    assert (state["status"], state["attempts"]) == ("pending", 0)
    events = [e for e in await world.outbox(order["id"]) if e["correlation_id"] == "replay-1"]
    assert [e["type"] for e in events] == ["variants.status", "variants.requested"]
    assert events[1]["reason"] == "replay"
    assert events[0]["status"] == "pending"


async def test_replay_is_409_unless_the_variant_is_failed(
    client: httpx.AsyncClient, service_headers: dict[str, str], world: World
) -> None:
    order = await world.order(client, variant_count=1)
    variant = order["variants"][0]
    await world.fail(variant["id"])
    job = await world.failed_job(variant["id"])

    first = await client.post(f"/v1/admin/failed-jobs/{job}/replay", headers=service_headers)
    second = await client.post(f"/v1/admin/failed-jobs/{job}/replay", headers=service_headers)
    no_variant = await world.failed_job(None)
    third = await client.post(f"/v1/admin/failed-jobs/{no_variant}/replay", headers=service_headers)
    unknown = await client.post(
        f"/v1/admin/failed-jobs/{uuid.uuid4()}/replay", headers=service_headers
    )

    assert (first.status_code, second.status_code, third.status_code) == (202, 409, 409)
    assert "pending" in second.json()["detail"]
    assert unknown.status_code == 404
    requested = [e for e in await world.outbox(order["id"]) if e.get("reason") == "replay"]
    assert len(requested) == 1
