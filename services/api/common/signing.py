"""Keys derived from the JWT secret, short-lived signed URLs and tamper-evident cursors.

Each purpose gets its own key, derived from the JWT secret with HMAC under a label: a signed URL
can never be replayed as a token, nor a cursor as a URL. Signatures are HMAC-SHA256 over a
canonical encoding with a separator and are compared in constant time.
"""

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["SignedUrl", "UrlSigner", "b64", "derive_key", "sign", "unb64", "verify"]

_SEPARATOR = b"\n"


def derive_key(secret: str, label: str) -> bytes:
    """A key for one purpose, derived from (and distinct from) ``secret``."""
    return hmac.new(secret.encode(), f"serenade/{label}/v1".encode(), hashlib.sha256).digest()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    """base64url without padding; ValueError for anything else."""
    if not text or any(c not in _B64_ALPHABET for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def sign(key: bytes, *parts: str) -> str:
    """The signature of ``parts``: each is encoded, then joined with a separator it cannot hold."""
    if any("\n" in part for part in parts):
        raise ValueError("a signed part may not contain a newline")
    message = _SEPARATOR.join(part.encode() for part in parts)
    return b64(hmac.new(key, message, hashlib.sha256).digest())


def verify(key: bytes, signature: str, *parts: str) -> bool:
    """Whether ``signature`` signs ``parts``, compared in constant time."""
    try:
        expected = sign(key, *parts)
    except ValueError:
        return False
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


@dataclass(frozen=True, slots=True)
class SignedUrl:
    url: str
    expires_at: int


class UrlSigner:
    """Signs and checks ``(path, expiry)`` pairs for audio URLs."""

    def __init__(self, secret: str, *, ttl_seconds: int, public_url: str | None = None) -> None:
        self._key = derive_key(secret, "signed-url")
        self.ttl_seconds = ttl_seconds
        self._base = (public_url or "").rstrip("/")

    def sign_path(self, path: str, *, now: float | None = None) -> SignedUrl:
        """A URL for ``path`` (absolute when a public base is set) valid for the TTL."""
        expires = int(time.time() if now is None else now) + self.ttl_seconds
        signature = sign(self._key, path, str(expires))
        url = f"{self._base}{quote(path)}?expires={expires}&signature={signature}"
        return SignedUrl(url=url, expires_at=expires)

    def check(
        self, path: str, expires: str | None, signature: str | None, *, now: float | None = None
    ) -> str | None:
        """None when the URL is valid now; otherwise why it is not."""
        if not expires or not signature:
            return "the URL is not signed"
        if not (expires.isascii() and expires.isdigit()) or len(expires) > 12:
            return "the URL's expiry is malformed"
        if not verify(self._key, signature, path, expires):
            return "the URL's signature does not match"
        if int(expires) < (time.time() if now is None else now):
            return "the URL has expired"
        return None
