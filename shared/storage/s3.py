"""Audio in S3 (or any S3-compatible store) through obstore, behind the ``Storage`` protocol.

``s3://bucket/prefix`` picks it; credentials, region and endpoint come from the usual
``AWS_*`` variables (``AWS_ENDPOINT_URL`` for MinIO and friends), read by obstore itself.
The adapter is written against any obstore store, so tests run it on obstore's in-memory store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import obstore
from obstore.exceptions import NotFoundError
from obstore.store import S3Store

from shared.storage.base import StoredObjectNotFound, validate_key

if TYPE_CHECKING:
    from obstore.store import ObjectStore

__all__ = ["ObjectStoreStorage", "S3Storage"]


class ObjectStoreStorage:
    """``Storage`` on an obstore store: keys are validated exactly as for local files."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await obstore.put_async(
            self.store, validate_key(key), data, attributes={"Content-Type": content_type}
        )

    async def size(self, key: str) -> int:
        try:
            meta = await obstore.head_async(self.store, validate_key(key))
        except (NotFoundError, FileNotFoundError) as error:
            raise StoredObjectNotFound(key) from error
        return int(meta["size"])

    async def read(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        path = validate_key(key)
        try:
            if end is None:
                if start == 0:
                    result = await obstore.get_async(self.store, path)
                else:
                    result = await obstore.get_async(
                        self.store, path, options={"range": {"offset": start}}
                    )
                return bytes(await result.bytes_async())
            if end <= start:
                return b""
            return bytes(await obstore.get_range_async(self.store, path, start=start, end=end))
        except (NotFoundError, FileNotFoundError) as error:
            raise StoredObjectNotFound(key) from error

    async def exists(self, key: str) -> bool:
        try:
            await self.size(key)
        except StoredObjectNotFound:
            return False
        return True

    async def delete(self, key: str) -> None:
        path = validate_key(key)
        try:
            await obstore.delete_async(self.store, path)
        except (NotFoundError, FileNotFoundError):
            return


class S3Storage(ObjectStoreStorage):
    """Objects under ``prefix`` in ``bucket``; configuration from the environment."""

    def __init__(self, *, bucket: str, prefix: str = "") -> None:
        if not bucket:
            raise ValueError("an s3:// storage URL needs a bucket: s3://bucket/prefix")
        super().__init__(S3Store(bucket, prefix=prefix or None))
        self.bucket = bucket
        self.prefix = prefix
