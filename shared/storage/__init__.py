"""Where audio is kept, behind one small interface chosen by ``SERENADE_STORAGE_URL``.

Paths are relative keys such as ``{user_id}/{order_id}/variant-1.mp3``; the database keeps the
key, never a URL. ``file://`` keeps files under a root folder (``file``); ``s3://bucket/prefix``
keeps objects in S3 (or any S3-compatible store) through obstore (``s3``, imported only by S3
deployments). ``base`` holds the protocol and the key rules, ``factory`` picks the store.
"""

from shared.storage.base import (
    InvalidStoragePath,
    Storage,
    StoredObjectNotFound,
    audio_path,
    content_type_for,
    discard_audio,
    validate_key,
)
from shared.storage.factory import storage_from_url
from shared.storage.file import FileStorage

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
