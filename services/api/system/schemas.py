"""The system feature's HTTP body: what /health and /ready answer."""

from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["Health"]


class Health(BaseModel):
    """The process answers; with /ready, what it depends on answers too."""

    status: Literal["ok", "ready"]
    checks: dict[str, str] = Field(default_factory=dict)
