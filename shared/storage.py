"""Where audio is kept, behind one small interface chosen by ``SERENADE_STORAGE_URL``.

Paths are relative keys such as ``{user_id}/{order_id}/variant-1.mp3``; the database keeps the
key, never a URL. ``file://`` keeps files under a root folder; ``s3://bucket/prefix`` keeps objects
in S3 (or any S3-compatible store) through obstore.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import unquote, urlparse

__all__ = [
    "FileStorage",
    "InvalidStoragePath",
    "Storage",
    "StoredObjectNotFound",
    "audio_path",
    "content_type_for",
    "discard_audio",
    "storage_from_url",
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
# A write this small (no fsync) takes tens of microseconds: less than the thread hop.
_WRITE_INLINE_BYTES = 64 * 1024
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


class FileStorage:
    """Objects as files under ``root``; writes are atomic (temp file, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path_of(self, key: str) -> Path:
        """The file of ``key``, guaranteed to lie inside the root."""
        path = (self.root / validate_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise InvalidStoragePath(key)
        return path

    async def put(self, key: str, data: bytes, content_type: str) -> None:  # noqa: ARG002
        if len(data) <= _WRITE_INLINE_BYTES:
            self._put(self.path_of(key), data)
        else:
            await asyncio.to_thread(self._put, self.path_of(key), data)

    @staticmethod
    def _put(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        temporary.write_bytes(data)
        temporary.replace(path)

    async def size(self, key: str) -> int:
        try:
            return self.path_of(key).stat().st_size
        except FileNotFoundError as error:
            raise StoredObjectNotFound(key) from error

    async def read(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        return await asyncio.to_thread(self._read, self.path_of(key), start, end)

    @staticmethod
    def _read(path: Path, start: int, end: int | None) -> bytes:
        try:
            with path.open("rb") as handle:
                handle.seek(start)
                return handle.read() if end is None else handle.read(max(0, end - start))
        except FileNotFoundError as error:
            raise StoredObjectNotFound(str(path)) from error

    async def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()

    async def delete(self, key: str) -> None:
        self.path_of(key).unlink(missing_ok=True)


def storage_from_url(url: str) -> Storage:
    """``file:///abs/path`` or ``s3://bucket/prefix``."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FileStorage(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        from shared.storage_s3 import S3Storage  # noqa: PLC0415 - only S3 deployments need it

        return S3Storage(bucket=parsed.netloc, prefix=parsed.path.strip("/"))
    raise ValueError(f"unsupported storage URL {url!r}: use file:///abs/path or s3://bucket/prefix")
