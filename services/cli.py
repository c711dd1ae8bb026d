"""The ``serenade`` command: the one module that knows every service.

It starts services by name through lazy imports, so no service needs to import another.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import uuid
from typing import TYPE_CHECKING, Any, Protocol, cast

import click
from pydantic import ValidationError

from shared.auth import issue_token
from shared.db import Role
from shared.devsecret import read_dev_secret
from shared.settings import MissingSettingError, Settings

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["main"]


class _ServiceEntry(Protocol):
    def __call__(self, settings: Settings) -> None: ...


def _settings(**overrides: Any) -> Settings:
    try:
        settings = Settings()
    except ValidationError as error:
        raise click.ClickException(f"invalid settings:\n{error}") from error
    clean = {key: value for key, value in overrides.items() if value is not None}
    return settings.model_copy(update=clean) if clean else settings


def _run_service(name: str, settings: Settings) -> None:
    """Import ``services.<name>.main`` only now, and run it until it stops."""
    module = importlib.import_module(f"services.{name}.main")
    run = cast("_ServiceEntry", module.run)
    try:
        run(settings)
    except MissingSettingError as error:
        raise click.ClickException(str(error)) from error


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """serenade: personalised songs, generated per variant, shared by link."""


@main.command()
def dev() -> None:
    """The whole stack in one terminal, embedded servers where no URL is configured."""
    from services.devstack import run_dev_stack  # noqa: PLC0415 - only this command needs it

    sys.exit(run_dev_stack(_settings()))


@main.command()
def migrate() -> None:
    """Apply pending migrations; safe to run from several processes at once."""
    from services.launcher import migrate as apply_pending  # noqa: PLC0415
    from shared.migrations import MigrationError  # noqa: PLC0415

    dsn = _require(_settings().require_database_url)
    try:
        applied = asyncio.run(apply_pending(dsn))
    except MigrationError as error:
        raise click.ClickException(str(error)) from error
    except OSError as error:
        raise click.ClickException(f"cannot reach PostgreSQL: {error}") from error
    for name in applied:
        click.echo(f"applied {name}")
    click.echo("database is up to date" if not applied else f"{len(applied)} migration(s) applied")


@main.command()
@click.option("--host", default=None, help="Bind address (overrides SERENADE_API_HOST).")
@click.option("--port", type=int, default=None, help="Bind port (overrides SERENADE_API_PORT).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="API processes on the one port (overrides SERENADE_API_WORKERS; default 1).",
)
def api(host: str | None, port: int | None, workers: int | None) -> None:
    """The HTTP API."""
    _run_service("api", _settings(api_host=host, api_port=port, api_workers=workers))


@main.command()
def generator() -> None:
    """The generator service: generates variants from serenade.variants.requested."""
    _run_service("generator", _settings())


@main.command()
def deadletter() -> None:
    """The dead-letter service: keeps every failure in failed_jobs."""
    _run_service("deadletter", _settings())


@main.command()
@click.option("--user", "user_id", type=click.UUID, default=None, help="The user's UUID (sub).")
@click.option(
    "--role",
    type=click.Choice([Role.AUTHENTICATED.value, Role.SERVICE.value]),
    default=Role.AUTHENTICATED.value,
    show_default=True,
)
@click.option("--ttl", type=click.IntRange(min=1), default=3600, show_default=True, help="Seconds.")
def token(user_id: uuid.UUID | None, role: str, ttl: int) -> None:
    """Print a bearer token signed with the configured secret."""
    settings = _settings()
    if role == Role.AUTHENTICATED.value and user_id is None:
        raise click.UsageError("--user is required for an authenticated token")
    secret = _jwt_secret(settings)
    click.echo(issue_token(secret, role=Role(role), user_id=user_id, ttl_seconds=ttl))


@main.command()
@click.argument("order_id", type=click.UUID)
@click.option(
    "--api",
    default=None,
    help="The API's base URL (default: http://SERENADE_API_HOST:SERENADE_API_PORT).",
)
def pay(order_id: uuid.UUID, api: str | None) -> None:
    """With SERENADE_PAYMENTS=local: pay the order's awaiting payment, as the checkout page's
    button does."""
    from services.api.payments.pay_command import PayError, pay_order  # noqa: PLC0415
    from services.launcher import api_url  # noqa: PLC0415

    settings = _settings()
    secret = _jwt_secret(settings)
    try:
        click.echo(pay_order(api or api_url(settings), secret, order_id))
    except PayError as error:
        raise click.ClickException(str(error)) from error


@main.group(name="failed-jobs")
def failed_jobs() -> None:
    """Operator view and replay of the dead-letter table."""


def _operator(name: str) -> Callable[..., int]:
    module = importlib.import_module("services.deadletter.operator")
    return cast("Callable[..., int]", getattr(module, name))


@failed_jobs.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, for scripts.")
@click.option("--unresolved", is_flag=True, help="Only rows not yet resolved.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
def failed_jobs_list(as_json: bool, unresolved: bool, limit: int) -> None:
    """Print id, age, subject, error and state of dead-letter rows, newest first."""
    settings = _settings()
    sys.exit(
        _operator("list_command")(settings, as_json=as_json, unresolved=unresolved, limit=limit)
    )


@failed_jobs.command(name="replay")
@click.argument("job_id", type=click.UUID, required=False)
@click.option("--all", "replay_all", is_flag=True, help="Replay every replayable row.")
def failed_jobs_replay(job_id: uuid.UUID | None, replay_all: bool) -> None:
    """Queue the original event of a row (or of every replayable row) again."""
    if (job_id is None) == (not replay_all):
        raise click.UsageError("give one ID or --all")
    sys.exit(_operator("replay_command")(_settings(), job_id=job_id, replay_all=replay_all))


def _jwt_secret(settings: Settings) -> str:
    """The configured signing secret, or the one ``serenade dev`` keeps in the data folder."""
    secret = (
        settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
    ) or read_dev_secret(settings.data_dir)
    if not secret:
        raise click.ClickException(
            "SERENADE_JWT_SECRET is not set (and no development secret exists in "
            f"{settings.data_dir}; `serenade dev` creates one)"
        )
    return secret


def _require(getter: Callable[[], str]) -> str:
    try:
        return getter()
    except MissingSettingError as error:
        raise click.ClickException(str(error)) from error


if __name__ == "__main__":
    main()
