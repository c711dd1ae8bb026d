"""The admin feature's HTTP bodies: dead-letter rows as the contract describes them."""

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, Field

__all__ = ["FailedJobOut", "FailedJobPage"]


class FailedJobOut(BaseModel):
    """A dead-letter row."""

    id: uuid.UUID
    subject: str
    service: str
    event_data: Any = Field(description="The original event as JSON, or its raw text.")
    error_type: str
    error: str
    attempts: int
    message_id: str
    correlation_id: str | None
    created_at: dt.datetime
    replayed_at: dt.datetime | None
    resolved_at: dt.datetime | None


class FailedJobPage(BaseModel):
    """Dead-letter rows, newest first."""

    items: list[FailedJobOut]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null at the end."
    )
