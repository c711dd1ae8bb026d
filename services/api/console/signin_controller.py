"""``/console/login``, ``/console/logout`` and the console's own static assets."""

from __future__ import annotations

import datetime as dt
from importlib.resources import files
from typing import Annotated, Any, Final

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_403_FORBIDDEN, HTTP_429_TOO_MANY_REQUESTS

from services.api.common.dependencies import Db
from services.api.common.problems import NotFound
from services.api.console import signin
from services.api.console.access import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    client_of,
    console_cookie,
    require_operator,
)
from services.api.console.sessions import MAX_SESSION, ConsoleSession

__all__ = ["ConsoleSignInController"]

_ASSET_TYPES: Final = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
_ASSETS: Final = {
    name: (files("services.api.console") / "static" / name).read_bytes()
    for name in ("console.css", "console.js", "favicon.svg")
}
# The sign-in form's cookie lives as long as an operator may take to paste a token.
_FORM_SECONDS: Final = 3600


def _form_page(
    request: Request[Any, Any, Any],
    *,
    next_path: str,
    error: str | None = None,
    status_code: int = 200,
) -> Template:
    """The sign-in form with a fresh CSRF token bound to a fresh cookie."""
    secret: str = request.app.state.jwt_secret
    nonce = signin.new_form_nonce()
    return Template(
        "console/login.html",
        context={
            "operator": None,
            "nav": None,
            "csrf_token": signin.sign_in_form_token(secret, nonce),
            "next": next_path,
            "error": error,
        },
        status_code=status_code,
        cookies=[
            console_cookie(request.app.state.settings, SIGN_IN_COOKIE, nonce, max_age=_FORM_SECONDS)
        ],
    )


def _expired(request: Request[Any, Any, Any], key: str) -> Cookie:
    return console_cookie(request.app.state.settings, key, "", max_age=0)


class ConsoleSignInController(Controller):
    path = "/console"
    include_in_schema = False

    @get("/login", name="console:login")
    async def login_form(
        self,
        request: Request[Any, Any, Any],
        next_path: Annotated[str | None, QueryParameter(name="next", max_length=2000)] = None,
    ) -> Template:
        """The sign-in form: paste a service_role token."""
        return _form_page(request, next_path=signin.safe_next(next_path))

    @post("/login", name="console:sign-in")
    async def sign_in(self, request: Request[Any, Any, Any], db: Db) -> Response[Any]:
        """Open a session for a service_role token; refuse (and count) anything else."""
        form = await request.form()
        field = {key: value for key, value in form.items() if isinstance(value, str)}
        next_path = signin.safe_next(field.get("next"))
        secret: str = request.app.state.jwt_secret
        if not signin.sign_in_form_token_valid(
            secret, request.cookies.get(SIGN_IN_COOKIE), field.get("csrf_token")
        ):
            return _form_page(
                request,
                next_path=next_path,
                error="The sign-in form expired or was not sent from this page; paste the "
                "token again.",
                status_code=HTTP_403_FORBIDDEN,
            )
        try:
            signed = await signin.sign_in(
                db,
                secret,
                token=field.get("token", ""),
                client=client_of(request),
                replacing=request.cookies.get(SESSION_COOKIE),
            )
        except signin.TooManyFailuresError:
            return _form_page(
                request,
                next_path=next_path,
                error="Too many refused sign-ins from this address; wait a few minutes.",
                status_code=HTTP_429_TOO_MANY_REQUESTS,
            )
        except signin.SignInRefusedError as refused:
            return _form_page(
                request,
                next_path=next_path,
                error=f"Refused: {refused}. The console needs a service_role token "
                "(serenade token --role service_role).",
                status_code=HTTP_403_FORBIDDEN,
            )
        lifetime = int(min(MAX_SESSION.total_seconds(), _seconds_until(signed.session)))
        settings = request.app.state.settings
        return Redirect(
            next_path,
            status_code=303,
            cookies=[
                console_cookie(settings, SESSION_COOKIE, signed.cookie_secret, max_age=lifetime),
                _expired(request, SIGN_IN_COOKIE),
            ],
        )

    @post("/logout", name="console:sign-out", before_request=require_operator)
    async def sign_out(self, request: Request[Any, Any, Any], db: Db) -> Redirect:
        """End the session on the server and forget the cookie."""
        await signin.sign_out(db, request.cookies.get(SESSION_COOKIE, ""))
        return Redirect(
            "/console/login", status_code=303, cookies=[_expired(request, SESSION_COOKIE)]
        )

    @get("/static/{name:str}", name="console:static")
    async def asset(self, name: FromPath[str]) -> Response[bytes]:
        """The console's style sheet and script (served here: no CDN, works offline)."""
        body = _ASSETS.get(name)
        if body is None:
            raise NotFound("no such asset")
        media_type = _ASSET_TYPES[name[name.rindex(".") :]]
        return Response(body, media_type=media_type)


def _seconds_until(session: ConsoleSession) -> float:
    return max(1.0, (session.expires_at - dt.datetime.now(dt.UTC)).total_seconds())
