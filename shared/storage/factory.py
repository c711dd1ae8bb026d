"""The store that ``SERENADE_STORAGE_URL`` names."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from shared.storage.file import FileStorage

if TYPE_CHECKING:
    from shared.storage.base import Storage

__all__ = ["storage_from_url"]


def storage_from_url(url: str) -> Storage:
    """``file:///abs/path`` or ``s3://bucket/prefix``."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FileStorage(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        from shared.storage.s3 import S3Storage  # noqa: PLC0415 - only S3 deployments need it

        return S3Storage(bucket=parsed.netloc, prefix=parsed.path.strip("/"))
    raise ValueError(f"unsupported storage URL {url!r}: use file:///abs/path or s3://bucket/prefix")
