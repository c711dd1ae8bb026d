"""Share links: one variant seen through its share token, as the anonymous role.

The lookup runs as ``Caller.anon(token)``: row-level security shows exactly the variant whose
token is presented and no more of its order than the share view needs. The audio URL signs a
path of the share token alone, so it names neither the owner nor the order.
"""

import datetime as dt
import time
import uuid

import asyncpg
from litestar.response import Stream

from services.api.common.database import Database
from services.api.common.problems import NotFound
from services.api.common.signing import UrlSigner
from services.api.sharing.media import audio_response, check_signature
from services.api.sharing.schemas import ShareOut
from shared.db import Caller, caller_args
from shared.enums import GenerationStatus
from shared.storage import Storage, validate_key

__all__ = [
    "canonical_token",
    "read_share",
    "serve_shared_audio",
    "share_audio_key",
    "share_audio_path",
    "share_view",
]


def canonical_token(token: str) -> uuid.UUID:
    """The token as a UUID; 404 for anything that cannot be one (it names no variant)."""
    try:
        return uuid.UUID(token)
    except ValueError as error:
        raise NotFound("no such share link") from error


def share_audio_path(token: uuid.UUID) -> str:
    return f"/v1/share/{token}/audio"


async def share_view(db: Database, signer: UrlSigner, token: str) -> ShareOut:
    """What the holder of a share link may see."""
    share_token = canonical_token(token)
    async with db.reading() as conn:
        row = await read_share(conn, share_token)
    if row is None:
        raise NotFound("no such share link")
    audio_url, expires_at = None, None
    if row["status"] == GenerationStatus.COMPLETE and row["storage_path"]:
        signed = signer.sign_path(share_audio_path(share_token))
        audio_url = signed.url
        expires_at = dt.datetime.fromtimestamp(signed.expires_at, dt.UTC)
    fields = {key: row[key] for key in row.keys() if key != "storage_path"}  # noqa: SIM118
    return ShareOut(**fields, audio_url=audio_url, expires_at=expires_at)


async def share_audio_key(db: Database, token: str) -> str:
    """The storage key of a shared variant's audio; 404 when there is none."""
    share_token = canonical_token(token)
    async with db.reading() as conn:
        row = await read_share(conn, share_token)
    if row is None or row["status"] != GenerationStatus.COMPLETE or not row["storage_path"]:
        raise NotFound("no audio for this share link")
    return str(row["storage_path"])


async def read_share(conn: asyncpg.Connection, share_token: uuid.UUID) -> asyncpg.Record | None:
    """The shared variant and its order's recipient and occasion, as the anonymous role
    presenting ``share_token``, in one round trip outside any transaction: ``api.get_share``
    takes the caller itself (migration 0100)."""
    return await conn.fetchrow(
        "SELECT * FROM api.get_share($1, $2, $3, $4)",
        *caller_args(Caller.anon(share_token)),
        share_token,
    )


async def serve_shared_audio(
    db: Database,
    storage: Storage,
    signer: UrlSigner,
    token: str,
    *,
    expires: str | None,
    signature: str | None,
    range_header: str | None,
) -> Stream:
    """``GET /v1/share/{token}/audio``: the signed share URL's audio, served like ``/media``."""
    check_signature(signer, share_audio_path(canonical_token(token)), expires, signature)
    key = validate_key(await share_audio_key(db, token))
    seconds_left = max(0, int(expires or 0) - int(time.time()))
    return await audio_response(storage, key, range_header, cache_seconds=seconds_left)
