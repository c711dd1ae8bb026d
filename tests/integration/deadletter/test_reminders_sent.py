"""The dead-letter service sends occasion reminders while it runs."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING

import orjson
from faststream import TestApp

from services.deadletter.app import build_app
from shared.db import Caller, transaction
from shared.events import SUBJECT_OCCASION_UPCOMING
from tests.helpers import wait_for

if TYPE_CHECKING:
    import asyncpg
    from nats.js import JetStreamContext

    from shared.settings import Settings


async def test_running_service_publishes_a_reminder_for_an_anniversary_in_the_window(
    dl_settings: Settings, dl_pool: asyncpg.Pool, js: JetStreamContext
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    in_ten_days = today + dt.timedelta(days=10)
    # A wedding two years ago (never 29 February, so its anniversary is the same month-day).
    wedding = in_ten_days.replace(year=in_ten_days.year - 2, day=min(in_ten_days.day, 28))
    user_id = uuid.uuid4()
    async with transaction(dl_pool, Caller.service()) as conn:
        order_id = await conn.fetchval(
            "INSERT INTO orders (user_id, recipient_name, occasion, genre, occasion_date)"
            " VALUES ($1, 'Ada', 'wedding', 'jazz', $2) RETURNING id",
            user_id,
            wedding,
        )

    async with TestApp(build_app(dl_settings)):

        async def reminder() -> dict[str, object] | None:
            try:
                message = await js.get_last_msg("SERENADE", SUBJECT_OCCASION_UPCOMING)
            except Exception:  # noqa: BLE001 - not there yet
                return None
            payload: dict[str, object] = orjson.loads(message.data or b"{}")
            return payload if payload.get("order_id") == str(order_id) else None

        event = await wait_for(reminder, timeout=20, what="an occasions.upcoming event")

    expected_next = wedding.replace(year=wedding.year + 2)
    assert event["user_id"] == str(user_id)
    assert event["occasion"] == "wedding"
    assert event["occasion_date"] == wedding.isoformat()
    assert event["next_date"] == expected_next.isoformat()
    assert event["days_until"] == (expected_next - today).days
