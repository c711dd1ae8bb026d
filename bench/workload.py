"""What every measurement sends: the order, the users who send it, and event-shaped payloads of
the size serenade's events have."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import orjson

from shared.auth import issue_token
from shared.db import Role

__all__ = ["ORDER", "ORDER_BODY", "User", "event_payload", "make_users"]

# Three variants (the default count), a story of a realistic length.
ORDER = {
    "recipient_name": "Ada Lovelace",
    "occasion": "birthday",
    "occasion_date": "2026-12-10",
    "genre": "pop",
    "mood": "joyful",
    "story": "She wrote the first program for a machine that did not exist yet, "
    "and she still hums while she debugs.",
}
ORDER_BODY = orjson.dumps(ORDER)


@dataclass(frozen=True, slots=True)
class User:
    """An end user and a bearer token for them."""

    id: uuid.UUID
    token: str

    @property
    def claims(self) -> str:
        """The claims as the API takes them (``request.jwt.claims``)."""
        return orjson.dumps(
            {"role": "authenticated", "aud": "authenticated", "sub": str(self.id)}
        ).decode()


def make_users(secret: str, count: int) -> list[User]:
    users = []
    for _ in range(count):
        user_id = uuid.uuid4()
        token = issue_token(secret, role=Role.AUTHENTICATED, user_id=user_id, ttl_seconds=3600)
        users.append(User(user_id, token))
    return users


def event_payload(kind: str, **fields: object) -> dict[str, object]:
    """An event as serenade writes it (ids, type, time, correlation id, fields)."""
    return {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "correlation_id": uuid.uuid4().hex,
        **{key: str(v) if isinstance(v, uuid.UUID) else v for key, v in fields.items()},
    }
