"""The storage protocol and what every store shares: keys, their validation, content types,
and the audio layout of a variant."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Protocol, runtime_checkable

__all__ = [
    "InvalidStoragePath",
    "Storage",
    "StoredObjectNotFound",
    "audio_path",
    "content_type_for",
    "discard_audio",
    "validate_key",
]

_CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "m4a": "audio/mp4",
}
_log = logging.getLogger(__name__)
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class InvalidStoragePath(ValueError):  # noqa: N818 - reads better at the raise site
    """A key that could leave the storage root or is not one of ours."""


class StoredObjectNotFound(LookupError):  # noqa: N818
    """No object at that key."""


def audio_path(user_id: uuid.UUID, order_id: uuid.UUID, variant_number: int, ext: str) -> str:
    """The seed's layout: ``{user_id}/{order_id}/variant-{n}.{ext}``."""
    return f"{user_id}/{order_id}/variant-{variant_number}.{ext}"


async def discard_audio(
    storage: Storage, user_id: uuid.UUID, order_id: uuid.UUID, variant_number: int
) -> None:
    """Delete whatever audio a variant's attempts left at its path, in any format: a failed
    variant keeps none (an attempt lost after storing its audio leaves a file nobody can
    reach, holding the customer's story as lyrics). Best effort: called after the failure is
    committed, whose settlement must not wait on storage trouble; what is left is logged."""
    try:
        for extension in _CONTENT_TYPES:
            await storage.delete(audio_path(user_id, order_id, variant_number, extension))
    except Exception:  # noqa: BLE001 - see above
        _log.warning("could not delete the failed variant's audio", exc_info=True)


def content_type_for(key: str) -> str:
    return _CONTENT_TYPES.get(key.rsplit(".", 1)[-1].lower(), "application/octet-stream")


def validate_key(key: str) -> str:
    """The key when it is a plain relative path of safe segments; InvalidStoragePath otherwise.

    Refuses absolute paths, ``..`` and ``.`` segments, backslashes, empty segments, control
    characters and anything percent-encoded: callers pass decoded keys, so a ``%`` left in one
    means a double encoding, which is never ours.
    """
    if not key or key.startswith("/") or "\\" in key or "%" in key:
        raise InvalidStoragePath(key)
    segments = key.split("/")
    if any(not _SAFE_SEGMENT.match(segment) or segment in {".", ".."} for segment in segments):
        raise InvalidStoragePath(key)
    return key


@runtime_checkable
class Storage(Protocol):
    """Keeps and serves audio objects by key."""

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def size(self, key: str) -> int:
        """Bytes in the object; StoredObjectNotFound when absent."""
        ...

    async def read(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive; None: to the end)."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...
