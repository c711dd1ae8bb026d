"""Serving stored audio: signed URLs checked, paths kept inside storage, HTTP Range honoured.

The order of refusals: no valid signature is 403 (whatever the path); a signed path that is not
a plain key of ours (``..``, encoded slashes or dots, absolute) is 400; a key with no object is
404; a range outside the object is 416.
"""

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from litestar.response import Stream

from services.api.common.problems import BadRequest, Forbidden, NotFound, RangeNotSatisfiable
from services.api.common.signing import UrlSigner
from shared.storage import (
    InvalidStoragePath,
    Storage,
    StoredObjectNotFound,
    content_type_for,
    validate_key,
)

__all__ = [
    "ByteRange",
    "audio_response",
    "check_signature",
    "parse_range",
    "serve_media",
    "storage_key",
]

_CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# Percent-encodings that only an attempt to leave the storage root would use.
_SUSPICIOUS = (b"%2e", b"%2f", b"%5c", b"%25", b"%00")


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # exclusive

    @property
    def length(self) -> int:
        return self.end - self.start


def check_signature(
    signer: UrlSigner, path: str, expires: str | None, signature: str | None
) -> None:
    """403 unless ``path`` carries a valid, unexpired signature."""
    problem = signer.check(path, expires, signature)
    if problem is not None:
        raise Forbidden(problem)


def storage_key(raw_path: bytes, key: str) -> str:
    """The key when the request named a plain key of ours; 400 otherwise."""
    path_only = raw_path.split(b"?", 1)[0].lower()
    if any(marker in path_only for marker in _SUSPICIOUS):
        raise BadRequest("encoded dots, slashes or percent signs are not allowed in the path")
    try:
        return validate_key(key)
    except InvalidStoragePath as error:
        raise BadRequest("the path lies outside storage") from error


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range asked for, None for the whole object (also for forms we do not
    serve, such as several ranges, which RFC 9110 lets a server ignore); 416 when it cannot be
    satisfied."""
    if header is None:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(size)
        return ByteRange(max(0, size - suffix), size)
    start = int(first)
    end = size if not last else min(int(last) + 1, size)
    if last and int(last) < start:
        return None  # syntactically invalid: ignore the header
    if start >= size:
        raise _unsatisfiable(size)
    return ByteRange(start, end)


def _unsatisfiable(size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(
        f"the range lies outside the object of {size} bytes",
        headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
    )


async def _chunks(storage: Storage, key: str, span: ByteRange) -> AsyncIterator[bytes]:
    position = span.start
    while position < span.end:
        upto = min(position + _CHUNK, span.end)
        chunk = await storage.read(key, position, upto)
        if not chunk:
            return
        yield chunk
        position += len(chunk)


async def audio_response(
    storage: Storage, key: str, range_header: str | None, *, cache_seconds: int
) -> Stream:
    """The object at ``key`` (whole: 200, or one range: 206), streamed in chunks."""
    try:
        size = await storage.size(key)
    except StoredObjectNotFound as error:
        raise NotFound("no audio at this path") from error
    span = parse_range(range_header, size)
    headers = {
        # Set here as well as media_type: Litestar lets the route's documented media type
        # (audio/mpeg) win over the response's own, and a .wav is not an MP3.
        "Content-Type": content_type_for(key),
        "Accept-Ranges": "bytes",
        "Cache-Control": f"private, max-age={max(0, cache_seconds)}",
        "X-Content-Type-Options": "nosniff",
    }
    status = 200
    if span is None:
        span = ByteRange(0, size)
    else:
        status = 206
        headers["Content-Range"] = f"bytes {span.start}-{span.end - 1}/{size}"
    headers["Content-Length"] = str(span.length)
    return Stream(
        _chunks(storage, key, span),
        status_code=status,
        media_type=content_type_for(key),
        headers=headers,
    )


async def serve_media(
    storage: Storage,
    signer: UrlSigner,
    *,
    raw_path: bytes,
    storage_path: str,
    expires: str | None,
    signature: str | None,
    range_header: str | None,
) -> Stream:
    """``GET /media/{storage_path}``: signature first (403), then the path (400), then 404."""
    key = storage_path[1:] if storage_path.startswith("/") else storage_path
    check_signature(signer, f"/media/{key}", expires, signature)
    return await audio_response(
        storage,
        storage_key(raw_path, key),
        range_header,
        cache_seconds=_seconds_left(expires),
    )


def _seconds_left(expires: str | None) -> int:
    return max(0, int(expires or 0) - int(time.time()))
