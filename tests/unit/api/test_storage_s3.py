"""The obstore adapter behind ``s3://`` storage, run on obstore's in-memory store."""

from __future__ import annotations

import pytest
from obstore.store import MemoryStore

from shared.storage import InvalidStoragePath, Storage, StoredObjectNotFound, storage_from_url
from shared.storage.s3 import ObjectStoreStorage, S3Storage


async def test_objects_are_written_sized_read_in_ranges_and_deleted() -> None:
    storage = ObjectStoreStorage(MemoryStore())
    await storage.put("u/o/variant-1.mp3", b"0123456789", "audio/mpeg")

    assert await storage.size("u/o/variant-1.mp3") == 10
    assert await storage.read("u/o/variant-1.mp3") == b"0123456789"
    assert await storage.read("u/o/variant-1.mp3", 4) == b"456789"
    assert await storage.read("u/o/variant-1.mp3", 2, 5) == b"234"
    assert await storage.read("u/o/variant-1.mp3", 5, 5) == b""
    assert await storage.exists("u/o/variant-1.mp3")
    await storage.delete("u/o/variant-1.mp3")
    await storage.delete("u/o/variant-1.mp3")
    assert not await storage.exists("u/o/variant-1.mp3")


async def test_a_missing_object_is_stored_object_not_found() -> None:
    storage = ObjectStoreStorage(MemoryStore())
    with pytest.raises(StoredObjectNotFound):
        await storage.size("nope.mp3")
    with pytest.raises(StoredObjectNotFound):
        await storage.read("nope.mp3")


async def test_keys_are_validated_as_for_local_files() -> None:
    storage = ObjectStoreStorage(MemoryStore())
    for key in ("../x.mp3", "/abs.mp3", "a//b.mp3"):
        with pytest.raises(InvalidStoragePath):
            await storage.put(key, b"x", "audio/mpeg")


def test_an_s3_url_selects_s3_storage_with_bucket_and_prefix() -> None:
    storage = storage_from_url("s3://songs/audio/v1")
    assert isinstance(storage, S3Storage)
    assert isinstance(storage, Storage)
    assert (storage.bucket, storage.prefix) == ("songs", "audio/v1")
    with pytest.raises(ValueError, match="bucket"):
        storage_from_url("s3:///prefix-only")
