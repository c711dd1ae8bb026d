"""The operator console: ``/console``, server-rendered pages for service_role operators.

``console_router(settings)`` is what the composition root mounts; its pages are the templates in
``services/api/templates/console`` and ``configure_templates`` adds the filters they use.
"""

from __future__ import annotations

from litestar import Router
from litestar.middleware.base import DefineMiddleware

from services.api.console.access import (
    SecurityHeaders,
    content_security_policy,
    exception_handlers,
    operator_dependencies,
    require_operator,
)
from services.api.console.controllers import ConsoleController
from services.api.console.formatting import configure_templates
from services.api.console.signin_controller import ConsoleSignInController
from shared.settings import Settings

__all__ = ["configure_templates", "console_router"]


def console_router(settings: Settings) -> Router:
    """Every console route, each response with the console's security headers; every page but
    the sign-in form and the static assets behind ``require_operator``."""
    pages = Router(
        path="/",
        route_handlers=[ConsoleController],
        before_request=require_operator,
        dependencies=operator_dependencies(),
        include_in_schema=False,
    )
    return Router(
        path="/",
        route_handlers=[ConsoleSignInController, pages],
        middleware=[DefineMiddleware(SecurityHeaders, policy=content_security_policy(settings))],
        exception_handlers=exception_handlers(),
        include_in_schema=False,
    )
