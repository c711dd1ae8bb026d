"""Parameters and response specs several controllers share."""

from typing import Annotated

from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, QueryParameter

from services.api.problems import problem_responses

__all__ = [
    "AUDIO_RESPONSES",
    "Cursor",
    "Expires",
    "IdempotencyKey",
    "Limit",
    "RangeHeader",
    "Signature",
    "Unresolved",
]

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retry-safe creation: the same key within 24 h returns the first order.",
    ),
]
Limit = Annotated[int, QueryParameter(ge=1, le=100, description="Page size (1-100).")]
Cursor = Annotated[
    str | None, QueryParameter(max_length=1024, description="next_cursor of the previous page.")
]
Unresolved = Annotated[bool, QueryParameter(description="Only rows whose resolved_at is null.")]
Expires = Annotated[
    str | None, QueryParameter(max_length=20, description="Unix time the URL expires.")
]
Signature = Annotated[
    str | None, QueryParameter(max_length=128, description="The URL's signature.")
]
RangeHeader = Annotated[
    str | None, HeaderParameter(name="Range", max_length=200, description="One byte range.")
]
AUDIO_RESPONSES = {
    206: ResponseSpec(None, description="The requested byte range (Content-Range says which)."),
    **problem_responses(
        400,
        403,
        404,
        416,
        503,
        described={
            400: "The signed path is not a plain storage key (traversal, encoded slashes).",
            403: "The signature is missing, altered or expired.",
            404: "No audio at this path.",
        },
    ),
}
