"""Keyset pagination with opaque, tamper-evident cursors (the pages themselves:
``shared.keyset``).

A cursor names the last row of a page by ``(created_at, id)`` and the listing it belongs to; it
is base64url JSON plus an HMAC, so a client can neither forge a position nor reuse a cursor of
one listing in another. Anything malformed or altered is a 400.
"""

import datetime as dt
import uuid

import orjson

from services.api.common.problems import BadRequest
from services.api.common.signing import b64, derive_key, sign, unb64, verify
from shared.keyset import Position

__all__ = ["CursorCodec", "Position"]


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._key = derive_key(secret, "cursor")

    def encode(self, listing: str, position: Position) -> str:
        body = b64(orjson.dumps([listing, position.created_at.isoformat(), str(position.id)]))
        return f"{body}.{sign(self._key, listing, body)}"

    def decode(self, listing: str, cursor: str | None) -> Position | None:
        """The position a cursor names; None for no cursor; BadRequest when it is not ours."""
        if cursor is None:
            return None
        body, _, signature = cursor.partition(".")
        if not body or not signature or not verify(self._key, signature, listing, body):
            raise BadRequest("the cursor is malformed or was altered")
        try:
            kind, created_at, row_id = orjson.loads(unb64(body))
            position = Position(dt.datetime.fromisoformat(created_at), uuid.UUID(row_id))
        except (ValueError, TypeError) as error:
            raise BadRequest("the cursor is malformed or was altered") from error
        if kind != listing:
            raise BadRequest("the cursor belongs to another listing")
        return position
