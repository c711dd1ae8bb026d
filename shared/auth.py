"""Bearer tokens: HS256 JWTs shaped like Supabase's, and the caller they stand for."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from shared.db import Caller, Role

__all__ = ["AuthError", "caller_from_authorization", "decode_token", "issue_token"]

_ALGORITHM = "HS256"
_USER_AUDIENCE = "authenticated"


class AuthError(Exception):
    """The presented credentials are not acceptable (HTTP 401)."""


def issue_token(
    secret: str,
    *,
    role: Role = Role.AUTHENTICATED,
    user_id: uuid.UUID | None = None,
    ttl_seconds: int = 3600,
    now: float | None = None,
) -> str:
    """A signed token: ``authenticated`` needs ``user_id``; ``service_role`` may name none."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"role": role.value, "iat": issued, "exp": issued + ttl_seconds}
    if role is Role.AUTHENTICATED:
        if user_id is None:
            raise ValueError("an authenticated token needs a user id")
        claims |= {"sub": str(user_id), "aud": _USER_AUDIENCE}
    elif user_id is not None:
        claims["sub"] = str(user_id)
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def decode_token(secret: str, token: str) -> Caller:
    """The caller a token stands for; raises AuthError for anything not acceptable."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise AuthError("malformed token") from error
    if header.get("alg") != _ALGORITHM:
        raise AuthError("only HS256 tokens are accepted")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            options={"require": ["exp", "role"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError as error:
        raise AuthError("token expired") from error
    except jwt.PyJWTError as error:
        raise AuthError(f"invalid token: {error}") from error
    return _caller_from_claims(claims)


def _caller_from_claims(claims: dict[str, Any]) -> Caller:
    role = claims.get("role")
    if role == Role.SERVICE.value:
        return Caller(Role.SERVICE, claims)
    if role == Role.ANON.value:
        return Caller(Role.ANON, claims)
    if role != Role.AUTHENTICATED.value:
        raise AuthError("unknown role")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if _USER_AUDIENCE not in audiences:
        raise AuthError("wrong or missing audience")
    try:
        user_id = uuid.UUID(str(claims.get("sub")))
    except ValueError as error:
        raise AuthError("the subject is not a user id") from error
    return Caller.user(user_id, claims)


def caller_from_authorization(secret: str, header: str | None) -> Caller:
    """The caller of an ``Authorization`` header value; no header means anon."""
    if header is None or not header.strip():
        return Caller.anon()
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("expected 'Authorization: Bearer <token>'")
    return decode_token(secret, token.strip())
