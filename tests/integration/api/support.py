"""Test data for the API tests: users with tokens, and shortcuts that play the generator's and
the dead-letter service's part directly in the database (as its owner, bypassing RLS)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.auth import issue_token
from shared.storage import audio_path, content_type_for, storage_from_url
from tests.cases.tokens import SECRET

if TYPE_CHECKING:
    import asyncpg
    import httpx

    from shared.settings import Settings

__all__ = ["ORDER", "SECRET", "World", "bearer"]

ORDER: dict[str, Any] = {
    "recipient_name": "Ada",
    "occasion": "birthday",
    "occasion_date": "2025-03-14",
    "genre": "pop",
    "mood": "joyful",
    "story": "She taught the machine to sing.",
    "variant_count": 3,
}
# A few bytes that start like an MP3 frame: enough for content type and ranges.
AUDIO = bytes(range(256)) * 40


def bearer(user_id: uuid.UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, user_id=user_id)}"}


@dataclass
class World:
    pool: asyncpg.Pool
    settings: Settings
    user_a: uuid.UUID
    user_b: uuid.UUID

    @property
    def a(self) -> dict[str, str]:
        return bearer(self.user_a)

    @property
    def b(self) -> dict[str, str]:
        return bearer(self.user_b)

    async def order(self, client: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
        """User A's new order (201), with ``changes`` to the default body."""
        response = await client.post("/v1/orders", json=ORDER | changes, headers=self.a)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def complete(
        self, variant: dict[str, Any], *, data: bytes = AUDIO, ext: str = "mp3"
    ) -> str:
        """Store audio for ``variant`` and mark it complete; returns its storage path."""
        order = await self.pool.fetchrow(
            "SELECT o.id, o.user_id FROM orders o JOIN song_variants v ON v.order_id = o.id"
            " WHERE v.id = $1",
            uuid.UUID(variant["id"]),
        )
        assert order is not None
        key = audio_path(order["user_id"], order["id"], variant["variant_number"], ext)
        await storage_from_url(self.settings.resolved_storage_url).put(
            key, data, content_type_for(key)
        )
        await self.pool.execute(
            "UPDATE song_variants SET status = 'complete', storage_path = $2, title = 'A Song',"
            " lyrics = 'la la la', duration_seconds = 12.5, attempts = 1, started_at = now(),"
            " completed_at = now() WHERE id = $1",
            uuid.UUID(variant["id"]),
            key,
        )
        return key

    async def fail(self, variant_id: str | uuid.UUID) -> None:
        await self.pool.execute(
            "UPDATE song_variants SET status = 'failed', attempts = 3, error = 'boom',"
            " completed_at = now() WHERE id = $1",
            uuid.UUID(str(variant_id)),
        )

    async def set_status(self, variant_id: str | uuid.UUID, status: str) -> None:
        await self.pool.execute(
            "UPDATE song_variants SET status = $2::generation_status WHERE id = $1",
            uuid.UUID(str(variant_id)),
            status,
        )

    async def order_count(self, user_id: uuid.UUID) -> int:
        return int(
            await self.pool.fetchval("SELECT count(*) FROM orders WHERE user_id = $1", user_id)
        )

    async def outbox(self, order_id: str | uuid.UUID) -> list[dict[str, Any]]:
        """The events written for ``order_id``, oldest first."""
        rows = await self.pool.fetch(
            "SELECT payload FROM outbox WHERE payload->>'order_id' = $1 ORDER BY id",
            str(order_id),
        )
        return [row["payload"] for row in rows]

    async def failed_job(
        self, variant_id: str | uuid.UUID | None, *, resolved: bool = False, age_seconds: int = 0
    ) -> uuid.UUID:
        """A dead-letter row about ``variant_id``."""
        event = {"type": "variants.requested", "variant_id": str(variant_id)}
        job_id: uuid.UUID = await self.pool.fetchval(
            "INSERT INTO failed_jobs (subject, service, event_data, error_type, error, attempts,"
            " message_id, correlation_id, variant_id, created_at, resolved_at)"
            " VALUES ('serenade.variants.requested', 'generator', $1, 'RuntimeError', 'boom', 3,"
            " $2, 'corr-1', $3, now() - make_interval(secs => $4),"
            " CASE WHEN $5 THEN now() END) RETURNING id",
            event,
            uuid.uuid4().hex,
            None if variant_id is None else uuid.UUID(str(variant_id)),
            float(age_seconds),
            resolved,
        )
        return job_id
