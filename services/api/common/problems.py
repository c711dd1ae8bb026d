"""Errors as RFC 9457 problem details (``application/problem+json``), for every failure.

The logic modules raise ``ApiProblem`` subclasses (plain exceptions that know their status);
Litestar's own exceptions (validation, routing, body size) and losing PostgreSQL are mapped here
too, so no response ever carries a stack trace or Litestar's default error shape.
"""

import contextlib
import logging
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import ParameterKwarg
from litestar.types import ExceptionHandlersMap
from pydantic import BaseModel, ConfigDict, Field

from services.api.common.correlation import correlation_id_of
from shared.db import DATABASE_UNREACHABLE

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "ApiProblem",
    "BadRequest",
    "Conflict",
    "FieldError",
    "Forbidden",
    "NotFound",
    "Problem",
    "RangeNotSatisfiable",
    "exception_handlers",
    "problem_response",
    "problem_responses",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
_log = logging.getLogger(__name__)


class FieldError(BaseModel):
    """One invalid input."""

    field: str = Field(description="The offending field (dotted path for nested ones).")
    message: str = Field(description="What is wrong with it.")
    source: str | None = Field(default=None, description="body, query, path or header.")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", description="A URI naming the problem type.")
    title: str = Field(description="Short summary of the status.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong, for a person.")
    instance: str | None = Field(default=None, description="The request path.")
    correlation_id: str | None = Field(default=None, description="The request's correlation id.")
    errors: list[FieldError] | None = Field(default=None, description="Invalid inputs, if any.")


class ApiProblem(Exception):  # noqa: N818 - reads better at the raise site
    """An expected failure the client caused or can act on."""

    status = HTTPStatus.BAD_REQUEST

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class BadRequest(ApiProblem):
    status = HTTPStatus.BAD_REQUEST


class Forbidden(ApiProblem):
    status = HTTPStatus.FORBIDDEN


class NotFound(ApiProblem):
    status = HTTPStatus.NOT_FOUND


class Conflict(ApiProblem):
    status = HTTPStatus.CONFLICT


class RangeNotSatisfiable(ApiProblem):
    status = HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE


def problem_response(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response[dict[str, Any]]:
    """A problem details response for ``request``."""
    problem = Problem(
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        correlation_id=correlation_id_of(request.scope),
        errors=errors,
        **(extra or {}),
    )
    return Response(
        content=problem.model_dump(mode="json", exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _public_name(request: Request[Any, Any, Any], key: str) -> str:
    """The name a client knows a parameter by (``Idempotency-Key``, not ``idempotency_key``)."""
    with contextlib.suppress(Exception):  # not every error belongs to a declared parameter
        parameter = request.route_handler.parsed_fn_signature.parameters.get(key)
        definition = parameter.kwarg_definition if parameter is not None else None
        if isinstance(definition, ParameterKwarg) and definition.name:
            return definition.name
    return key


def _field_errors(request: Request[Any, Any, Any], extra: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    for item in extra if isinstance(extra, list) else []:
        if isinstance(item, dict):
            errors.append(
                FieldError(
                    field=_public_name(request, str(item.get("key") or "body")),
                    message=str(item.get("message", "invalid")).removeprefix("Value error, "),
                    source=str(item["source"]) if item.get("source") else None,
                )
            )
    return errors


def _on_validation(
    request: Request[Any, Any, Any], error: ValidationException
) -> Response[dict[str, Any]]:
    errors = _field_errors(request, error.extra)
    detail = "; ".join(f"{item.field}: {item.message}" for item in errors) or str(error.detail)
    return problem_response(request, error.status_code, detail, errors=errors or None)


# Litestar's words (an InternalServerException) for a client that hung up before its body was
# in: the client's doing, not a server error; nobody is left to read the answer.
_CLIENT_WENT_AWAY = "client disconnected prematurely"


def _on_http(request: Request[Any, Any, Any], error: HTTPException) -> Response[dict[str, Any]]:
    if error.status_code >= 500 and error.detail == _CLIENT_WENT_AWAY:
        _log.info("the client went away before its request was complete")
        return problem_response(
            request, HTTPStatus.BAD_REQUEST, "the client went away before its request was complete"
        )
    if error.status_code >= 500:
        _log.error("request failed: %s", error, exc_info=error)
    detail = str(error.detail)
    if error.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
        detail = "the request body is too large"
        with contextlib.suppress(Exception):  # only a matched route knows its limit
            limit = request.route_handler.resolve_request_max_body_size()
            detail = f"the request body is larger than the {limit} bytes allowed"
    return problem_response(request, error.status_code, detail, headers=error.headers)


def _on_problem(request: Request[Any, Any, Any], error: ApiProblem) -> Response[dict[str, Any]]:
    return problem_response(request, error.status, error.detail, headers=error.headers)


def _on_database_unavailable(
    request: Request[Any, Any, Any], error: Exception
) -> Response[dict[str, Any]]:
    _log.warning("database unavailable: %s: %s", type(error).__name__, error)
    return problem_response(
        request,
        HTTPStatus.SERVICE_UNAVAILABLE,
        "the database is unavailable; try again shortly",
        headers={"Retry-After": "1"},
    )


def _on_unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    _log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return problem_response(request, HTTPStatus.INTERNAL_SERVER_ERROR, "an unexpected error")


def exception_handlers() -> ExceptionHandlersMap:
    """The app's handlers, most specific first (Litestar picks by the exception's MRO)."""
    handlers: ExceptionHandlersMap = {
        ValidationException: _on_validation,
        HTTPException: _on_http,
        ApiProblem: _on_problem,
        Exception: _on_unexpected,
    }
    handlers.update(dict.fromkeys(DATABASE_UNREACHABLE, _on_database_unavailable))
    return handlers


_DESCRIPTIONS = {
    400: "Invalid input: the problem names the offending fields.",
    401: "No acceptable bearer token.",
    403: "The caller's role may not use this endpoint.",
    404: "No such resource visible to the caller.",
    409: "The resource is not in a state that allows this.",
    413: "The request body is too large.",
    416: "The requested byte range lies outside the object.",
    503: "PostgreSQL (or NATS) is unavailable; try again shortly.",
}


def problem_responses(
    *statuses: int, described: dict[int, str] | None = None
) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem details an operation may answer with."""
    descriptions = _DESCRIPTIONS | (described or {})
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=descriptions.get(status, HTTPStatus(status).phrase),
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
        for status in statuses
    }
