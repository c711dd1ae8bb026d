"""Every setting of serenade, in one pydantic-settings model read from ``SERENADE_*`` variables.

Nothing else in the code base reads the environment: services receive a ``Settings`` object.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["MissingSettingError", "PaymentsMode", "Settings"]


class PaymentsMode(enum.StrEnum):
    """Who takes the money: nobody (orders are free), the built-in checkout, or Stripe."""

    OFF = "off"
    LOCAL = "local"
    STRIPE = "stripe"


# Stripe Checkout Sessions expire between 30 minutes and 24 hours after they are made.
STRIPE_MIN_TTL = 1800
STRIPE_MAX_TTL = 86400


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
    api_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="API processes serving the one port (`serenade api --workers`): one process "
        "uses one core. With more than one, a supervisor process restarts a worker that dies, "
        "/metrics on any of them reports the sum over all, each serves live events, and the "
        "outbox relay and the payments worker still do each piece of work once.",
    )
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
        default=1024,
        ge=1,
        le=4096,
        description="Variants one generator process works on at once. Sized for a provider that "
        "waits on a remote service (seconds to minutes per song: hundreds in flight, a few KB "
        "each); a provider that renders here keeps its own, smaller limit (local: its render "
        "threads).",
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

    # --- payments ----------------------------------------------------------------------------
    payments: PaymentsMode = Field(
        default=PaymentsMode.OFF,
        description="`off` (orders are free: generation starts at once), `local` (the built-in "
        "test checkout at /pay/{payment_id}, development only) or `stripe` (Stripe Checkout).",
    )
    payment_webhook_secret: SecretStr | None = Field(
        default=None,
        description="The secret that signs payment webhooks (Stripe's whsec_..., any string for "
        "local). `serenade dev` generates one for local and keeps it in the data directory; "
        "required for stripe.",
    )
    stripe_api_key: SecretStr | None = Field(
        default=None, description="Stripe's secret key (sk_...); required for stripe."
    )
    stripe_api_base: str | None = Field(
        default=None, description="Stripe's API base (a test double's address); unset: Stripe's."
    )
    price_order: int = Field(
        default=2900, gt=0, description="Price of an order of up to three variants, minor units."
    )
    price_upsell: int = Field(
        default=900, gt=0, description="Price of each variant past three, and of the +1 upsell."
    )
    currency: str = Field(
        default="eur", pattern=r"^[a-z]{3}$", description="ISO currency code, lower case."
    )
    payment_ttl: int = Field(
        default=86400,
        ge=1,
        description="Seconds an unpaid order waits before it expires (1800-86400 with stripe).",
    )
    payment_worker_interval: float = Field(
        default=1.0,
        gt=0.0,
        le=60.0,
        description="Seconds between the payments worker's rounds (expiry, sessions, refunds).",
    )
    refund_max_attempts: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Refund attempts before a refund is dead-lettered (service payments).",
    )

    @model_validator(mode="after")
    def _stripe_ttl_within_checkout_limits(self) -> Self:
        if self.payments is PaymentsMode.STRIPE and not (
            STRIPE_MIN_TTL <= self.payment_ttl <= STRIPE_MAX_TTL
        ):
            raise ValueError(
                f"SERENADE_PAYMENT_TTL must be {STRIPE_MIN_TTL}-{STRIPE_MAX_TTL} seconds with "
                "stripe (Checkout's own limits)"
            )
        return self

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

    def require_payment_webhook_secret(self) -> str:
        secret = self.payment_webhook_secret
        if secret is None or not secret.get_secret_value().strip():
            raise MissingSettingError(
                "SERENADE_PAYMENT_WEBHOOK_SECRET", "give the secret that signs payment webhooks"
            )
        return secret.get_secret_value()

    def require_stripe_api_key(self) -> str:
        if self.stripe_api_key is None or not self.stripe_api_key.get_secret_value():
            raise MissingSettingError("SERENADE_STRIPE_API_KEY", "give Stripe's secret key")
        return self.stripe_api_key.get_secret_value()

    @property
    def payments_on(self) -> bool:
        return self.payments is not PaymentsMode.OFF
