"""Audio as files under a root folder (``file:///abs/path``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from pathlib import Path

from shared.storage.base import InvalidStoragePath, StoredObjectNotFound, validate_key

__all__ = ["FileStorage"]

# A write this small (no fsync) takes tens of microseconds: less than the thread hop.
_WRITE_INLINE_BYTES = 64 * 1024
# A temporary file of our own: never an existing one, never inherited by a child process.
_CREATE_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


class FileStorage:
    """Objects as files under ``root``; writes are atomic (temp file, then rename).

    Paths are plain strings and ``os`` calls: every variant's write passes here, and pathlib's
    objects (and ``Path.resolve``, an lstat per component of the whole path in Python) cost the
    generator more than the write itself."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        # "/" would make "//key" below: the root "/" is the empty prefix.
        self._prefix = str(self.root).rstrip("/")

    def path_of(self, key: str) -> Path:
        """The file of ``key``, guaranteed to lie inside the root."""
        return Path(self._file_of(key))

    def _file_of(self, key: str) -> str:
        """``path_of`` as a string. A valid key (no ``..``, ``.``, empty or absolute segment) is
        lexically inside the root, which is resolved already: only a symlink below the root could
        lead out of it. So each existing component below the root is looked at (lstat), and when
        one is a symlink the whole path is resolved and must still lie inside the root."""
        path = f"{self._prefix}/{validate_key(key)}"
        prefix = self._prefix
        for segment in key.split("/"):
            prefix = f"{prefix}/{segment}"
            try:
                mode = os.lstat(prefix).st_mode
            except OSError:
                break  # absent (or not below a folder): nothing further to follow
            if stat.S_ISLNK(mode):
                resolved = Path(os.path.realpath(path))
                if not resolved.is_relative_to(self.root):
                    raise InvalidStoragePath(key)
                return str(resolved)
        return path

    async def put(self, key: str, data: bytes, content_type: str) -> None:  # noqa: ARG002
        if len(data) <= _WRITE_INLINE_BYTES:
            self._put(self._file_of(key), data)
        else:
            await asyncio.to_thread(self._put, self._file_of(key), data)

    # os calls on strings, not pathlib (see the class): this runs for every variant.
    @staticmethod
    def _put(path: str, data: bytes) -> None:
        folder, name = path.rsplit("/", 1)
        temporary = f"{folder}/.{name}.{os.urandom(16).hex()}.tmp"
        try:
            handle = os.open(temporary, _CREATE_NEW, 0o666)
        except FileNotFoundError:  # the order's first variant: its folders are made once
            os.makedirs(folder, exist_ok=True)  # noqa: PTH103
            handle = os.open(temporary, _CREATE_NEW, 0o666)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(handle, view) :]
            finally:
                os.close(handle)
            os.replace(temporary, path)  # noqa: PTH105
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)  # noqa: PTH108
            raise

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
