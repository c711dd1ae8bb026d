"""Signing in to the console: a pasted ``service_role`` token opens a server-side session.

Anything else is refused, logged and counted; a client refused ``MAX_FAILURES`` times within
``FAILURE_WINDOW`` must wait, whatever it sends (counted in PostgreSQL, so across every API
process). The sign-in form has its own CSRF token, bound to a cookie the form's page set
(double submit, signed with a key derived from the JWT secret).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote, urlsplit

from services.api.common.database import Database
from services.api.common.signing import derive_key, sign, verify
from services.api.console import sessions
from services.api.console.sessions import ConsoleSession
from shared.auth import AuthError, decode_token
from shared.db import Caller, Role

__all__ = [
    "HOME",
    "SignInRefusedError",
    "TooManyFailuresError",
    "safe_next",
    "sign_in",
    "sign_in_form_token",
    "sign_in_form_token_valid",
    "sign_out",
]

HOME: Final = "/console"
_log = logging.getLogger(__name__)
_FORM_LABEL: Final = "console-sign-in"


class SignInRefusedError(Exception):
    """The pasted text is not an acceptable service_role token; the message says why."""


class TooManyFailuresError(Exception):
    """This client was refused too often lately."""


@dataclass(frozen=True, slots=True)
class SignedIn:
    cookie_secret: str
    session: ConsoleSession


def new_form_nonce() -> str:
    return secrets.token_urlsafe(24)


def sign_in_form_token(jwt_secret: str, nonce: str) -> str:
    """The sign-in form's CSRF token for the nonce in its cookie."""
    return sign(derive_key(jwt_secret, _FORM_LABEL), nonce)


def sign_in_form_token_valid(jwt_secret: str, nonce: str | None, token: str | None) -> bool:
    if not nonce or not token:
        return False
    return verify(derive_key(jwt_secret, _FORM_LABEL), token, nonce)


def safe_next(target: str | None) -> str:
    """Where to land after sign-in: a relative ``/console`` path, never another site."""
    if not target or any(c in target for c in "\\\r\n\t") or target.startswith("//"):
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return HOME
    if parts.path != HOME and not parts.path.startswith(HOME + "/"):
        return HOME
    if parts.path.startswith((f"{HOME}/login", f"{HOME}/logout", f"{HOME}/static")):
        return HOME
    # Browsers resolve dot segments, percent-encoded ones too: /console/../v1 is /v1.
    if any(segment in (".", "..") for segment in unquote(parts.path).split("/")):
        return HOME
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _operator_token(jwt_secret: str, token: str) -> tuple[Caller, float]:
    """The caller of a valid service_role token and its expiry; AuthError for anything else."""
    caller = decode_token(jwt_secret, token.strip())
    if caller.role is not Role.SERVICE:
        raise AuthError(f"a {caller.role.value} token cannot open the console")
    expires = caller.claims.get("exp")
    if not isinstance(expires, int | float):
        raise AuthError("the token has no exp")
    return caller, float(expires)


async def sign_in(
    db: Database,
    jwt_secret: str,
    *,
    token: str,
    client: str,
    replacing: str | None,
) -> SignedIn:
    """A new session for a valid service_role token; raises (and records why) otherwise."""
    async with db.run_as(Caller.service()) as conn:
        if await sessions.recent_failures(conn, client) >= sessions.MAX_FAILURES:
            _log.warning("console sign-in refused: too many failures", extra={"client": client})
            raise TooManyFailuresError
    try:
        caller, expires = _operator_token(jwt_secret, token)
    except AuthError as error:
        reason = str(error) if token.strip() else "no token"
        _log.warning("console sign-in refused: %s", reason, extra={"client": client})
        async with db.run_as(Caller.service()) as conn:
            await sessions.record_failure(conn, client, reason)
        raise SignInRefusedError(reason) from error
    token_id = caller.claims.get("jti")
    async with db.run_as(Caller.service()) as conn:
        cookie_secret, session = await sessions.open_session(
            conn,
            token_expires_at=dt.datetime.fromtimestamp(float(expires), dt.UTC),
            token_id=str(token_id)[:200] if token_id is not None else None,
            client=client,
            replacing=replacing,
        )
    _log.info(
        "console session opened",
        extra={"client": client, "session_id": str(session.id), "until": str(session.expires_at)},
    )
    return SignedIn(cookie_secret, session)


async def sign_out(db: Database, cookie_secret: str) -> None:
    async with db.run_as(Caller.service()) as conn:
        await sessions.revoke_session(conn, cookie_secret)
