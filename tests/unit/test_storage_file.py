"""``FileStorage``: atomic writes under its root, and no key (nor a symlink planted below the root)
leads outside it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from shared.storage import FileStorage, InvalidStoragePath, StoredObjectNotFound

if TYPE_CHECKING:
    from pathlib import Path

ESCAPING_KEYS = [
    "",
    "../outside.wav",
    "a/../../outside.wav",
    "/etc/passwd",
    "a/./b.wav",
    "a//b.wav",
    "a\\..\\b.wav",
    "a/%2e%2e/b.wav",
    "a/.hidden",
    "a/b\x00.wav",
]


@pytest.fixture
def storage(tmp_path: Path) -> FileStorage:
    return FileStorage(tmp_path / "root")


async def test_put_read_size_exists_delete(storage: FileStorage) -> None:
    key = "user/order/variant-1.wav"

    await storage.put(key, b"RIFF....", "audio/wav")
    await storage.put("user/order/variant-2.wav", b"other", "audio/wav")

    assert await storage.read(key) == b"RIFF...."
    assert await storage.read(key, 1, 3) == b"IF"
    assert await storage.size(key) == 8
    assert await storage.exists(key)
    assert storage.path_of(key) == storage.root / "user" / "order" / "variant-1.wav"
    # Only the two files: no temporary left beside them.
    folder = storage.root / "user" / "order"
    assert sorted(path.name for path in folder.iterdir()) == ["variant-1.wav", "variant-2.wav"]
    await storage.delete(key)
    await storage.delete(key)  # absent: nothing to do
    assert not await storage.exists(key)
    with pytest.raises(StoredObjectNotFound):
        await storage.size(key)


async def test_a_put_replaces_the_file_whole(storage: FileStorage) -> None:
    await storage.put("u/o/variant-1.wav", b"first version", "audio/wav")
    await storage.put("u/o/variant-1.wav", b"second", "audio/wav")
    big = os.urandom(200_000)  # written off the loop
    await storage.put("u/o/variant-2.wav", big, "audio/wav")

    assert await storage.read("u/o/variant-1.wav") == b"second"
    assert await storage.read("u/o/variant-2.wav") == big


@pytest.mark.parametrize("key", ESCAPING_KEYS)
async def test_keys_that_could_leave_the_root_are_refused(storage: FileStorage, key: str) -> None:
    with pytest.raises(InvalidStoragePath):
        storage.path_of(key)
    with pytest.raises(InvalidStoragePath):
        await storage.put(key, b"x", "audio/wav")
    with pytest.raises(InvalidStoragePath):
        await storage.read(key)
    with pytest.raises(InvalidStoragePath):
        await storage.delete(key)


@pytest.mark.parametrize("link", ["user", "user/order", "user/order/variant-1.wav"])
async def test_a_symlink_below_the_root_cannot_lead_out(tmp_path: Path, link: str) -> None:
    storage = FileStorage(tmp_path / "root")
    outside = tmp_path / "outside"
    (outside / "order").mkdir(parents=True)
    (outside / "order" / "variant-1.wav").write_bytes(b"secret")
    (outside / "variant-1.wav").write_bytes(b"secret")
    planted = storage.root / link
    planted.parent.mkdir(parents=True, exist_ok=True)
    target = {"user": outside, "user/order": outside / "order"}.get(
        link, outside / "order" / "variant-1.wav"
    )
    planted.symlink_to(target)
    key = "user/order/variant-1.wav"

    for attempt in (
        storage.read(key),
        storage.size(key),
        storage.exists(key),
        storage.put(key, b"overwritten", "audio/wav"),
        storage.delete(key),
    ):
        with pytest.raises(InvalidStoragePath):
            await attempt
    assert (outside / "order" / "variant-1.wav").read_bytes() == b"secret"


async def test_a_symlink_that_stays_inside_the_root_is_followed(storage: FileStorage) -> None:
    await storage.put("real/order/variant-1.wav", b"audio", "audio/wav")
    (storage.root / "alias").symlink_to(storage.root / "real")

    assert await storage.read("alias/order/variant-1.wav") == b"audio"
    assert storage.path_of("alias/order/variant-1.wav") == storage.path_of(
        "real/order/variant-1.wav"
    )
