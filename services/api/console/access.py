"""Who may see a console page: the session cookie, the CSRF check of every form, and the
headers every console response carries.

A page without a live session redirects (303) to the sign-in form; a POST whose ``csrf_token``
is not the session's is 403 before its handler runs, so nothing changes. The cookie is read
here alone: ``/v1`` authenticates bearer tokens only, and the cookie's ``Path=/console`` keeps
browsers from sending it there at all.
"""

from __future__ import annotations

import hmac
from typing import Any, Final
from urllib.parse import quote, urlsplit

from litestar import Request, Response
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.di import NamedDependency, Provide
from litestar.response import Redirect, Template
from litestar.types import ASGIApp, ExceptionHandlersMap, Message, Receive, Scope, Send

from services.api.common.database import Database
from services.api.common.problems import ApiProblem
from services.api.console import sessions
from services.api.console.sessions import ConsoleSession
from shared.db import Caller
from shared.settings import Settings

__all__ = [
    "SESSION_COOKIE",
    "SIGN_IN_COOKIE",
    "CsrfRefusedError",
    "NoSessionError",
    "Operator",
    "SecurityHeaders",
    "client_of",
    "console_cookie",
    "content_security_policy",
    "exception_handlers",
    "operator_dependencies",
    "require_operator",
]

SESSION_COOKIE: Final = "serenade_console"
SIGN_IN_COOKIE: Final = "serenade_console_sign_in"
COOKIE_PATH: Final = "/console"
CSRF_FIELD: Final = "csrf_token"


class NoSessionError(Exception):
    """The request brought no live session."""


class CsrfRefusedError(Exception):
    """A state-changing request without the session's CSRF token."""


def client_of(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def console_cookie(settings: Settings, key: str, value: str, *, max_age: int) -> Cookie:
    """A console cookie: HttpOnly, SameSite=Strict, Path=/console, Secure behind https."""
    secure = bool(settings.public_url and settings.public_url.lower().startswith("https:"))
    return Cookie(
        key=key,
        value=value,
        path=COOKIE_PATH,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=secure,
    )


_STATE_KEY: Final = "console_session"


async def _live_session(request: Request[Any, Any, Any]) -> ConsoleSession:
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        raise NoSessionError
    db: Database = request.app.state.database
    async with db.run_as(Caller.service()) as conn:
        session = await sessions.find_session(conn, secret)
    if session is None:
        raise NoSessionError
    return session


async def require_operator(request: Request[Any, Any, Any]) -> None:
    """Before every console page: a live session, and on a POST the session's CSRF token.

    A hook rather than a parameter, so that no state-changing handler can forget the check;
    a POST that fails it never reaches its handler, so nothing changes.
    """
    session = await _live_session(request)
    if request.method == "POST":
        form = await request.form()
        token = form.get(CSRF_FIELD)
        if not isinstance(token, str) or not hmac.compare_digest(
            token.encode("utf-8", "replace"), session.csrf_token.encode()
        ):
            raise CsrfRefusedError
    request.state[_STATE_KEY] = session


def _operator(request: Request[Any, Any, Any]) -> ConsoleSession:
    session: ConsoleSession = request.state[_STATE_KEY]
    return session


def operator_dependencies() -> dict[str, Provide]:
    return {"operator": Provide(_operator, sync_to_thread=False)}


# Handler parameter type: the session ``require_operator`` found.
Operator = NamedDependency[ConsoleSession]


def _to_sign_in(request: Request[Any, Any, Any], _: NoSessionError) -> Response[Any]:
    target = request.url.path
    if request.method == "GET" and request.url.query:
        target += f"?{request.url.query}"
    if request.method != "GET":
        target = "/console"
    return Redirect(f"/console/login?next={quote(target, safe='/')}", status_code=303)


def _csrf_refused(_: Request[Any, Any, Any], __: CsrfRefusedError) -> Response[Any]:
    return Template(
        template_name="console/notice.html",
        context={
            "title": "Refused",
            "message": "This form was not sent from a console page of your session "
            "(its csrf_token is missing or wrong). Nothing was changed: open the page again "
            "and resend the form.",
            "operator": None,
            "nav": None,
        },
        status_code=403,
    )


def _problem(request: Request[Any, Any, Any], problem: ApiProblem) -> Response[Any]:
    # The API's own functions raise these (no such row, not failed, a bad cursor): a page says
    # it in words, with the status the JSON API would answer.
    return Template(
        template_name="console/notice.html",
        context={
            "title": problem.status.phrase,
            "message": problem.detail,
            "operator": request.state.get(_STATE_KEY),
            "nav": None,
        },
        status_code=problem.status,
    )


def exception_handlers() -> ExceptionHandlersMap:
    return {
        NoSessionError: _to_sign_in,
        CsrfRefusedError: _csrf_refused,
        ApiProblem: _problem,
    }


def content_security_policy(settings: Settings) -> str:
    """Only the API's own scripts, styles and media; never framed."""
    media = "'self'"
    if settings.public_url:
        origin = urlsplit(settings.public_url)
        if origin.scheme and origin.netloc:
            media += f" {origin.scheme}://{origin.netloc}"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"media-src {media}; connect-src 'self'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )


class SecurityHeaders:
    """Every console response: never cached, never framed, only its own resources."""

    def __init__(self, app: ASGIApp, policy: str) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                headers["Cache-Control"] = "no-store"
                headers["Content-Security-Policy"] = self.policy
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "same-origin"
            await send(message)

        await self.app(scope, receive, send_with_headers)
