"""The API tests' signing secret and the bearer tokens that must be refused with it.

The drill stack signs with the same secret, so the negative suite means the same over HTTP as
in process: each token is refused for what else is wrong with it, not for its key.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt

__all__ = ["BAD_TOKENS", "SECRET", "claims"]

SECRET = "api-test-secret-" + "s" * 48
_USER = str(uuid.uuid4())


def claims(**changes: Any) -> dict[str, Any]:
    """A user's claims, changed as asked (``None`` drops a claim)."""
    claims = {
        "sub": _USER,
        "role": "authenticated",
        "aud": "authenticated",
        "exp": time.time() + 600,
    }
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def _unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


BAD_TOKENS = {
    "alg none": _unsigned(claims()),
    "alg none, service_role": _unsigned({"role": "service_role", "exp": time.time() + 600}),
    "HS512": jwt.encode(claims(), SECRET, algorithm="HS512"),
    "wrong secret": jwt.encode(claims(), "another-secret-" + "y" * 32, algorithm="HS256"),
    "forged service_role": jwt.encode(
        {"role": "service_role", "exp": time.time() + 600}, "guess" * 8, algorithm="HS256"
    ),
    "expired": jwt.encode(claims(exp=time.time() - 60), SECRET, algorithm="HS256"),
    "no exp": jwt.encode(claims(exp=None), SECRET, algorithm="HS256"),
    "wrong aud": jwt.encode(claims(aud="anon"), SECRET, algorithm="HS256"),
    "missing aud": jwt.encode(claims(aud=None), SECRET, algorithm="HS256"),
    "sub not a uuid": jwt.encode(claims(sub="alice"), SECRET, algorithm="HS256"),
    "unknown role": jwt.encode(claims(role="superuser"), SECRET, algorithm="HS256"),
    "malformed": "not.a.token",
    "garbage header": "eyJhbGciOi.eyJzdWIi.sig",
    "empty after scheme": "",
}
