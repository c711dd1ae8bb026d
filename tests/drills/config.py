"""How big the drills are: short (``make test``) or full (``make drills``), from the environment
through one pydantic-settings model, as everything else in serenade is configured."""

from __future__ import annotations

import functools
import shlex
import sys
from typing import TypeVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DrillSettings", "drill_settings"]

T = TypeVar("T")


class DrillSettings(BaseSettings):
    """``SERENADE_DRILLS_*``: the drills' own switches (the services never read these)."""

    model_config = SettingsConfigDict(env_prefix="SERENADE_DRILLS_", extra="ignore", frozen=True)

    full: bool = Field(
        default=False,
        description="Run the full versions (100 generator kills, a 30-minute soak, ...); "
        "the default is the short versions that `make test` runs.",
    )
    record: bool | None = Field(
        default=None,
        description="Write each drill's figures into docs/reliability.md; "
        "by default only the full versions are recorded.",
    )
    command: str | None = Field(
        default=None,
        description="The command to show beside the recorded figures (`make drills` sets it).",
    )
    soak_seconds: float | None = Field(
        default=None, gt=0, description="Override the soak's duration (full: 1800 s)."
    )
    nats_outage_seconds: float | None = Field(
        default=None,
        gt=0,
        description="The NATS drill's one long outage (full: 150 s, past nats-py's default "
        "two minutes of reconnecting); none in the short version unless set.",
    )

    def pick(self, short: T, full: T) -> T:
        """``full`` in full mode, else ``short``."""
        return full if self.full else short

    @property
    def mode(self) -> str:
        return "full" if self.full else "short"

    @property
    def records(self) -> bool:
        return self.full if self.record is None else self.record

    @property
    def shown_command(self) -> str:
        if self.command:
            return self.command
        prefix = "SERENADE_DRILLS_FULL=1 " if self.full else ""
        return prefix + shlex.join(["pytest", *sys.argv[1:]])


@functools.cache
def drill_settings() -> DrillSettings:
    return DrillSettings()
