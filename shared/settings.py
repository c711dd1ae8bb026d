"""Every setting of serenade, in one pydantic-settings model read from ``SERENADE_*`` variables.

Nothing else in the code base reads the environment: services receive a ``Settings`` object.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["MissingSettingError", "Settings", "get_settings"]


class MissingSettingError(RuntimeError):
    """A setting that this command needs was not given."""

    def __init__(self, variable: str, why: str) -> None:
        super().__init__(f"{variable} is not set: {why}")
        self.variable = variable


class Settings(BaseSettings):
    """serenade's configuration. Each field is the variable ``SERENADE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="SERENADE_", extra="ignore", frozen=True)

    # --- where the servers are -------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL DSN. `serenade dev` starts an embedded server when unset; "
        "every other command requires it.",
    )
    nats_url: str | None = Field(
        default=None,
        description="NATS server URL(s), comma-separated. `serenade dev` starts an embedded "
        "nats-server with JetStream when unset; every other command requires it.",
    )
    jwt_secret: SecretStr | None = Field(
        default=None,
        description="HS256 secret that signs bearer tokens (Supabase-compatible). `serenade dev` "
        "generates one and keeps it in the data directory; required elsewhere.",
    )
    data_dir: Path = Field(
        default=Path(".serenade"),
        description="Embedded servers' data and, by default, local audio storage.",
    )
    storage_url: str | None = Field(
        default=None,
        description="Where audio is kept: file:///abs/path or s3://bucket/prefix. "
        "Default: file://<data dir>/storage.",
    )

    # --- the API ---------------------------------------------------------------------------
    api_host: str = Field(default="127.0.0.1", description="API bind address.")
    api_port: int = Field(default=8000, ge=0, le=65535, description="API bind port.")
    public_url: str | None = Field(
        default=None,
        description="Absolute base for URLs in responses; unset: URLs are relative to the API.",
    )
    signed_url_ttl: int = Field(
        default=900, ge=1, le=7 * 24 * 3600, description="Lifetime of signed audio URLs, seconds."
    )

    # --- generation ------------------------------------------------------------------------
    provider: str = Field(
        default="local",
        description="Song provider: `local` (real audio rendered here), `instant` (tiny valid "
        "file, for load tests) or `package.module:Class`.",
    )
    provider_failure_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Fraction of generation attempts that fail on purpose (drills and tests).",
    )
    provider_delay_ms: int = Field(
        default=0, ge=0, description="Extra delay per generation attempt, milliseconds."
    )
    max_attempts: int = Field(
        default=3, ge=1, le=100, description="Attempts per variant before it is dead-lettered."
    )
    retry_backoff: Annotated[tuple[float, ...], NoDecode] = Field(
        default=(1.0, 5.0, 25.0),
        description="Seconds between attempts, comma-separated; the last repeats.",
    )
    generator_concurrency: int = Field(
        default=8, ge=1, le=1024, description="Variants one generator process works on at once."
    )
    generator_ack_wait: float = Field(
        default=30.0,
        ge=1.0,
        le=3600.0,
        description="Seconds JetStream waits for a sign of life from a generator before it hands "
        "a variant request to another process (a crashed generator's work resumes after this); "
        "a live generator sends in_progress three times per period while a provider runs.",
    )
    generator_provider_timeout: float = Field(
        default=300.0,
        gt=0.0,
        description="Seconds one generation attempt may take before it counts as failed.",
    )
    nats_fetch_timeout: float = Field(
        default=2.0,
        gt=0.0,
        le=60.0,
        description="Seconds a pull request of the generator's and the dead-letter service's "
        "consumers waits on NATS for messages before it asks again; short, so that the request a "
        "stopped process leaves behind expires soon. An idle consumer's empty pull is routine.",
    )
    generator_shutdown_grace: float = Field(
        default=5.0,
        ge=0.0,
        description="Seconds a stopping generator lets in-flight variants finish before it hands "
        "the rest back to the stream for another process.",
    )

    # --- observability (the generator's and the dead-letter service's HTTP endpoint) ----------
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Bind address of the generator's and the dead-letter service's HTTP "
        "endpoint (/metrics, /health, /asyncapi.json). The API serves /metrics on its own port.",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of that endpoint; unset: no endpoint; 0: any free port (the service "
        "logs the one it took), so that several processes can run on one machine.",
    )

    # --- retention -------------------------------------------------------------------------
    reminder_days: int = Field(
        default=30,
        ge=1,
        le=366,
        description="How many days ahead occasion reminders are sent.",
    )

    @field_validator("retry_backoff", mode="before")
    @classmethod
    def _parse_backoff(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            if not parts:
                raise ValueError("give at least one number of seconds")
            return tuple(float(part) for part in parts)
        return value

    @field_validator("retry_backoff")
    @classmethod
    def _backoff_not_negative(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(seconds < 0 for seconds in value):
            raise ValueError("backoff seconds must be zero or more, at least one value")
        return value

    # --- derived values and required-ness --------------------------------------------------
    @property
    def resolved_storage_url(self) -> str:
        """The storage URL, defaulting to a folder under the data directory."""
        if self.storage_url:
            return self.storage_url
        return (self.data_dir.resolve() / "storage").as_uri()

    def require_database_url(self) -> str:
        if not self.database_url:
            raise MissingSettingError("SERENADE_DATABASE_URL", "give the PostgreSQL DSN")
        return self.database_url

    def require_nats_servers(self) -> list[str]:
        if not self.nats_url:
            raise MissingSettingError("SERENADE_NATS_URL", "give the NATS server URL(s)")
        return [url.strip() for url in self.nats_url.split(",") if url.strip()]

    def require_jwt_secret(self) -> str:
        if self.jwt_secret is None or not self.jwt_secret.get_secret_value():
            raise MissingSettingError("SERENADE_JWT_SECRET", "give the HS256 signing secret")
        return self.jwt_secret.get_secret_value()

    def backoff_for(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based); the last repeats."""
        index = min(max(attempt, 1), len(self.retry_backoff)) - 1
        return self.retry_backoff[index]


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
