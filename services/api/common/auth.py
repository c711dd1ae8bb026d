"""Who is calling: the bearer token decoded once per request, and the guards on roles.

A missing token is the anonymous role. A token that is present but not acceptable is 401 on the
endpoints that look at it (share links and ``/media`` do not: they run as anon whatever is sent).
"""

import time
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from shared.auth import AuthError, caller_from_authorization
from shared.db import Caller, Role

__all__ = ["caller_of", "service_only", "user_only", "user_or_service"]

_STATE_KEY = "caller"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="serenade"'}
# Tokens accepted lately, by secret and Authorization header: a client sends the same token with
# every request, and checking its signature and claims (~0.1 ms) is the largest fixed cost of a
# small request. Only accepted tokens are kept, each until its exp; cleared when full.
_ACCEPTED: dict[tuple[str, str], tuple[Caller, float]] = {}
_ACCEPTED_MAX = 4096


def _caller_for(secret: str, authorization: str | None) -> Caller:
    if not authorization:
        return caller_from_authorization(secret, authorization)
    key = (secret, authorization)
    known = _ACCEPTED.get(key)
    if known is not None and time.time() < known[1]:
        return known[0]
    caller = caller_from_authorization(secret, authorization)  # raises for a bad token
    expires = caller.claims.get("exp")
    if isinstance(expires, int | float):
        if len(_ACCEPTED) >= _ACCEPTED_MAX:
            _ACCEPTED.clear()
        _ACCEPTED[key] = (caller, float(expires))
    return caller


def caller_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Caller:
    """The caller of this request (decoded once, then kept in the request's state)."""
    known = connection.state.get(_STATE_KEY)
    if isinstance(known, Caller):
        return known
    secret: str = connection.app.state.jwt_secret
    try:
        caller = _caller_for(secret, connection.headers.get("authorization"))
    except AuthError as error:
        raise NotAuthorizedException(
            f"invalid bearer token: {error}", headers=_CHALLENGE
        ) from error
    connection.state[_STATE_KEY] = caller
    return caller


# The guards are coroutines although they never wait: Litestar runs a plain-function guard in a
# worker thread, a thread hop (and a wait for the GIL) on every request.
def _require(connection: ASGIConnection[Any, Any, Any, Any], *allowed: Role) -> None:
    role = caller_of(connection).role
    if role in allowed:
        return
    if role is Role.ANON:
        needed = " or ".join(role.value for role in allowed)
        # An anon key (a token whose role is anon) was sent, but it names no one.
        sent = "the token's role is anon" if connection.headers.get("authorization") else None
        detail = (
            f"{sent or 'a bearer token is required'}: this endpoint needs a token of role {needed}"
        )
        raise NotAuthorizedException(detail, headers=_CHALLENGE)
    raise PermissionDeniedException(f"the {role.value} role may not use this endpoint")


async def user_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: an end user (owner endpoints); service_role gets 403, anon 401."""
    _require(connection, Role.AUTHENTICATED)


async def user_or_service(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard: an end user or service_role; anon gets 401."""
    _require(connection, Role.AUTHENTICATED, Role.SERVICE)


async def service_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: service_role (operators); users get 403, anon 401."""
    _require(connection, Role.SERVICE)
