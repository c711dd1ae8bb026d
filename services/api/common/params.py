"""Query parameters more than one feature takes: the keyset page's size and cursor."""

from typing import Annotated

from litestar.params import QueryParameter

__all__ = ["Cursor", "Limit"]

Limit = Annotated[int, QueryParameter(ge=1, le=100, description="Page size (1-100).")]
Cursor = Annotated[
    str | None, QueryParameter(max_length=1024, description="next_cursor of the previous page.")
]
