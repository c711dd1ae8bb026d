"""compose.yaml and the Dockerfile, checked without Docker.

Docker cannot run where the suite runs, so these tests read both files the way Compose and the
Docker builder would (YAML with anchors and merge keys, Compose's ``${VAR:?error}``
interpolation, the Dockerfile's instructions and ``.dockerignore``) and hold them to the
deployment's design: six services, one image for every serenade process, the same CLI commands
the tests run, health-gated start-up, pinned images, a non-root runtime, no secret baked in,
and services that log in as the non-superuser role ``serenade``. The init script that creates
that role is run against a real PostgreSQL in ``tests/integration/test_deployment.py``.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml

from services.cli import main as cli
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

SERENADE_SERVICES = ("migrate", "api", "generator", "deadletter")
LONG_RUNNING = ("postgres", "nats", "api", "generator", "deadletter")
REQUIRED_SETTINGS = ("SERENADE_DATABASE_URL", "SERENADE_NATS_URL", "SERENADE_JWT_SECRET")
SECRETS = ("SERENADE_JWT_SECRET", "SERENADE_DB_PASSWORD", "POSTGRES_PASSWORD")
# What an operator would put in .env: every secret the file requires.
OPERATOR_ENV = {
    "SERENADE_JWT_SECRET": "jwt-secret-" + "j" * 40,
    "SERENADE_DB_PASSWORD": "db-password-0123456789abcdef",
    "POSTGRES_PASSWORD": "superuser-password-fedcba9876543210",
}

# The Compose specification's keys (compose-spec.json), for the parts this file uses.
TOP_LEVEL_KEYS = {
    "version", "name", "include", "services", "networks", "volumes", "configs", "secrets",
    "models",
}  # fmt: skip
SERVICE_KEYS = {
    "annotations", "attach", "blkio_config", "build", "cap_add", "cap_drop", "cgroup",
    "cgroup_parent", "command", "configs", "container_name", "cpu_count", "cpu_percent",
    "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus",
    "cpuset", "credential_spec", "depends_on", "deploy", "develop", "device_cgroup_rules",
    "devices", "dns", "dns_opt", "dns_search", "domainname", "entrypoint", "env_file",
    "environment", "expose", "extends", "external_links", "extra_hosts", "gpus", "group_add",
    "healthcheck", "hostname", "image", "init", "ipc", "isolation", "label_file", "labels",
    "links", "logging", "mac_address", "mem_limit", "mem_reservation", "mem_swappiness",
    "memswap_limit", "models", "network_mode", "networks", "oom_kill_disable",
    "oom_score_adj", "pid", "pids_limit", "platform", "ports", "post_start", "pre_stop",
    "privileged", "profiles", "provider", "pull_policy", "read_only", "restart", "runtime",
    "scale", "secrets", "security_opt", "shm_size", "stdin_open", "stop_grace_period",
    "stop_signal", "storage_opt", "sysctls", "tmpfs", "tty", "ulimits", "use_api_socket",
    "user", "userns_mode", "uts", "volumes", "volumes_from", "working_dir",
}  # fmt: skip
BUILD_KEYS = {
    "context", "dockerfile", "dockerfile_inline", "args", "ssh", "labels", "cache_from",
    "cache_to", "no_cache", "additional_contexts", "network", "pull", "target", "shm_size",
    "extra_hosts", "isolation", "privileged", "secrets", "tags", "ulimits", "platforms",
    "entitlements",
}  # fmt: skip
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval",
                    "disable"}  # fmt: skip
DEPENDS_ON_KEYS = {"condition", "restart", "required"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
RESTART_POLICIES = {"no", "always", "on-failure", "unless-stopped"}
PORT_KEYS = {"name", "target", "published", "host_ip", "protocol", "app_protocol", "mode"}
VOLUME_MOUNT_KEYS = {"type", "source", "target", "read_only", "consistency", "bind", "volume",
                     "tmpfs", "image"}  # fmt: skip
# Inside its container the API must listen beyond loopback; the host publishes it on loopback.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
DURATION = re.compile(r"^(\d+(\.\d+)?(us|ms|s|m|h))+$")


# --- reading compose.yaml as Compose does -----------------------------------------------------
class MissingVariableError(ValueError):
    """A ``${VAR:?message}`` whose variable is unset or empty: Compose refuses the file."""


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<word>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation: ``$$``, ``$VAR``, ``${VAR}`` and ``:-``, ``-``,
    ``:?``, ``?``, ``:+``, ``+``."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, word = match["op"], match["word"] or ""
        value = env.get(name)
        unset = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in {":-", "-"}:
            return word if unset else str(value)
        if op in {":?", "?"}:
            if unset:
                raise MissingVariableError(f"required variable {name} is missing a value: {word}")
            return str(value)
        if op in {":+", "+"}:
            return "" if unset else word
        return value or ""

    return _VARIABLE.sub(replace, text)


def _interpolated(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolated(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolated(value, env) for key, value in node.items()}
    return node


@functools.cache
def raw_compose() -> dict[str, Any]:
    """compose.yaml as YAML, anchors and merge keys resolved, variables not yet substituted."""
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """compose.yaml as ``docker compose config`` would see it with ``env`` as the shell."""
    result = _interpolated(raw_compose(), OPERATOR_ENV if env is None else env)
    assert isinstance(result, dict)
    return result


def service(name: str) -> dict[str, Any]:
    found = compose()["services"][name]
    assert isinstance(found, dict)
    return found


def container_environment(name: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """The variables a service's container gets: valueless keys pass through only when set."""
    shell = OPERATOR_ENV if env is None else env
    declared = compose(shell)["services"][name].get("environment", {})
    if isinstance(declared, list):
        pairs = [item.split("=", 1) if "=" in item else [item, None] for item in declared]
        declared = dict(pairs)
    result: dict[str, str] = {}
    for key, value in declared.items():
        if value is None:
            if key in shell:
                result[key] = shell[key]
        else:
            result[key] = str(value)
    return result


def healthcheck_command(name: str) -> list[str]:
    test = service(name)["healthcheck"]["test"]
    assert isinstance(test, list), "write healthcheck tests in exec form"
    kind, *command = test
    if kind == "CMD-SHELL":
        return shlex.split(command[0])
    assert kind == "CMD"
    return [str(part) for part in command]


def mounts(name: str) -> dict[str, str]:
    """A service's mounts as target path -> source (volume name or host path)."""
    found: dict[str, str] = {}
    for entry in service(name).get("volumes", []):
        if isinstance(entry, str):
            source, target = entry.split(":")[:2]
        else:
            source, target = entry["source"], entry["target"]
        found[target] = source
    return found


def seconds(duration: str) -> float:
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(
        float(number) * units[unit]
        for number, unit in re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", duration)
    )


def storage_path() -> str:
    url = urlsplit(container_environment("api")["SERENADE_STORAGE_URL"])
    assert url.scheme == "file"
    return url.path


# --- reading the Dockerfile as the builder does ---------------------------------------------
@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str

    def exec_form(self) -> list[str]:
        parsed = json.loads(self.arguments)
        assert isinstance(parsed, list), f"{self.keyword} should use the exec (JSON) form"
        return [str(part) for part in parsed]

    def flags(self) -> dict[str, str]:
        return dict(re.findall(r"(?:^|\s)--([a-z-]+)=(\S+)", self.arguments))


@dataclass(frozen=True)
class Stage:
    image: str
    name: str
    instructions: tuple[Instruction, ...]

    def all(self, keyword: str) -> list[Instruction]:
        return [entry for entry in self.instructions if entry.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"stage {self.name} has no {keyword}"
        return found[-1]


def dockerfile_instructions() -> list[Instruction]:
    """Instructions in order: comments dropped, backslash continuations joined."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text = pending + line
        pending = ""
        keyword, _, arguments = text.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def dockerfile_stages() -> list[Stage]:
    stages: list[Stage] = []
    current: list[Instruction] = []
    header: tuple[str, str] | None = None
    for instruction in dockerfile_instructions():
        if instruction.keyword == "FROM":
            if header is not None:
                stages.append(Stage(header[0], header[1], tuple(current)))
            match = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", instruction.arguments, re.IGNORECASE)
            assert match, f"every stage is named: FROM {instruction.arguments}"
            header, current = (match[1], match[2]), []
        else:
            assert header is not None, f"{instruction.keyword} before the first FROM"
            current.append(instruction)
    assert header is not None, "the Dockerfile has no FROM"
    stages.append(Stage(header[0], header[1], tuple(current)))
    return stages


def final_stage() -> Stage:
    return dockerfile_stages()[-1]


def stage_env(stage: Stage) -> dict[str, str]:
    found: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        for key, value in re.findall(
            r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)', instruction.arguments
        ):
            found[key] = value.strip('"')
    return found


def dockerignore_excludes(path: str) -> bool:
    """Whether ``.dockerignore`` keeps ``path`` (relative to the context) out of the build:
    a pattern excludes a path when it matches the path or one of its parent folders; the last
    matching pattern wins, and ``!`` re-includes."""
    excluded = False
    parts = path.split("/")
    candidates = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        regex = "".join(
            ".*" if token == "**" else "[^/]*" if token == "*" else "[^/]" if token == "?"
            else token if token.startswith("[") else re.escape(token)
            for token in re.split(r"(\*\*|\*|\?|\[[^\]]*\])", pattern)
            if token
        )  # fmt: skip
        regex = regex.replace(".*/", "(?:.*/)?")
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            excluded = not negated
    return excluded


# --- compose.yaml: shape and Compose's own rules ----------------------------------------------
def test_compose_defines_postgres_nats_a_one_shot_migration_and_the_three_services() -> None:
    assert set(compose()["services"]) == {
        "postgres", "nats", "migrate", "api", "generator", "deadletter",
    }  # fmt: skip


def test_compose_uses_only_keys_compose_knows() -> None:
    document = raw_compose()
    for key in document:
        assert key in TOP_LEVEL_KEYS or key.startswith("x-"), f"unknown top-level key {key}"
    for name, definition in compose()["services"].items():
        for key in definition:
            assert key in SERVICE_KEYS or key.startswith("x-"), f"{name}: unknown key {key}"
        build = definition.get("build", {})
        assert set(build) <= BUILD_KEYS, f"{name}: unknown build keys {set(build) - BUILD_KEYS}"
        health = definition.get("healthcheck", {})
        assert set(health) <= HEALTHCHECK_KEYS, f"{name}: unknown healthcheck keys"
        for field in ("interval", "timeout", "start_period", "start_interval"):
            if field in health:
                assert DURATION.match(str(health[field])), f"{name}: {field} {health[field]}"
        if "stop_grace_period" in definition:
            assert DURATION.match(str(definition["stop_grace_period"]))
        for dependency, rule in definition.get("depends_on", {}).items():
            assert dependency in compose()["services"], f"{name} depends on unknown {dependency}"
            assert set(rule) <= DEPENDS_ON_KEYS
            assert rule["condition"] in CONDITIONS
        assert str(definition.get("restart", "no")) in RESTART_POLICIES, f"{name}: restart"
        for port in definition.get("ports", []):
            assert isinstance(port, dict), f"{name}: write ports in the long form"
            assert set(port) <= PORT_KEYS
        for entry in definition.get("volumes", []):
            assert isinstance(entry, str) or set(entry) <= VOLUME_MOUNT_KEYS
        environment = definition.get("environment", {})
        assert isinstance(environment, dict), f"{name}: environment as a mapping"
        for key, value in environment.items():
            assert value is None or isinstance(value, str | int | float | bool), (name, key)


def test_every_named_volume_is_declared_and_every_declared_volume_is_used() -> None:
    declared = set(compose().get("volumes") or {})
    used: set[str] = set()
    for name in compose()["services"]:
        for source in mounts(name).values():
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} mounts undeclared volume {source}"
                used.add(source)
    assert used == declared
    assert declared >= {"postgres-data", "nats-data", "audio"}


def test_bind_mounted_files_exist_in_the_repository() -> None:
    for name in compose()["services"]:
        for source in mounts(name).values():
            if source.startswith("."):
                assert (ROOT / source).is_file(), f"{name} mounts missing {source}"


def test_images_are_pinned_to_exact_versions() -> None:
    for name, definition in compose()["services"].items():
        if "build" in definition:
            continue
        image = definition["image"]
        repository, _, tag = image.partition(":")
        assert tag, f"{name}: {image} has no tag"
        assert tag != "latest"
        assert re.match(r"^\d+\.\d+\.\d+(-|$)|^\d+\.\d+-", tag), f"{name}: {image} is not exact"
        assert "/" not in repository, f"{name}: use the official image"


# --- one image, the CLI's commands ------------------------------------------------------------
def test_serenade_processes_all_build_from_the_one_dockerfile_at_the_repository_root() -> None:
    builds = {name: service(name)["build"] for name in SERENADE_SERVICES}
    assert len({json.dumps(build, sort_keys=True) for build in builds.values()}) == 1
    build = builds["api"]
    assert (COMPOSE_FILE.parent / build["context"]).resolve() == ROOT
    assert (ROOT / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    for name in SERENADE_SERVICES:
        assert "entrypoint" not in service(name), "the image's ENTRYPOINT is serenade"


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("migrate", ["migrate"]),
        ("api", ["api", "--host", ALL_INTERFACES, "--port", "8000"]),
        ("generator", ["generator"]),
        ("deadletter", ["deadletter"]),
    ],
)
def test_each_service_runs_the_serenade_command_the_tests_run(
    name: str, command: list[str]
) -> None:
    assert service(name)["command"] == command
    # The real CLI accepts it: the subcommand exists and its options parse.
    subcommand = cli.get_command(click.Context(cli), command[0])
    assert subcommand is not None, f"serenade has no {command[0]} command"
    subcommand.make_context(command[0], command[1:])


def test_api_listens_on_all_interfaces_in_its_container_and_publishes_8000_on_loopback() -> None:
    api = service("api")
    assert api["ports"] == [
        {"target": 8000, "published": "8000", "host_ip": "127.0.0.1", "protocol": "tcp"}
    ]
    command = api["command"]
    assert command[command.index("--host") + 1] == ALL_INTERFACES
    assert command[command.index("--port") + 1] == "8000"
    for name in ("postgres", "nats", "generator", "deadletter", "migrate"):
        assert "ports" not in service(name), f"{name} is reachable inside the network only"


# --- health, order of start-up ------------------------------------------------------------------
def test_long_running_services_have_a_healthcheck_or_say_why_not() -> None:
    for name in LONG_RUNNING:
        definition = service(name)
        if "healthcheck" in definition:
            assert not definition["healthcheck"].get("disable", False)
            assert definition["healthcheck"]["test"]
        else:
            reason = definition.get("x-no-healthcheck", "")
            assert len(reason.split()) >= 5, f"{name}: no healthcheck and no reason given"
    assert {"postgres", "nats", "api"} <= {n for n in LONG_RUNNING if "healthcheck" in service(n)}


def test_postgres_is_healthy_only_once_it_accepts_tcp_connections() -> None:
    command = healthcheck_command("postgres")
    assert command[0] == "pg_isready"
    # The image's first-start bootstrap server listens on a socket only: TCP means the real one.
    assert "--host=127.0.0.1" in command or command[1:3] == ["-h", "127.0.0.1"]


def test_nats_runs_jetstream_on_file_storage_in_its_volume_and_reports_health() -> None:
    nats = service("nats")
    assert nats["image"].split(":")[1].endswith("-alpine"), "scratch images have no wget"
    command = nats["command"]
    assert "-js" in command or "--jetstream" in command
    store = command[command.index("-sd") + 1]
    assert mounts("nats")[store] == "nats-data"
    monitor = command[command.index("-m") + 1]
    probe = healthcheck_command("nats")
    assert probe[0] == "wget"
    url = urlsplit(probe[-1])
    assert (url.hostname, url.port, url.path) == ("127.0.0.1", int(monitor), "/healthz")
    assert "js-enabled-only=true" in url.query


def test_api_is_healthy_when_ready_answers_on_its_own_port() -> None:
    probe = healthcheck_command("api")
    assert probe[:2] == ["python", "-c"], "the image has python, not necessarily curl"
    assert "http://127.0.0.1:8000/ready" in probe[2]
    assert "timeout=" in probe[2]
    compile(probe[2], "healthcheck", "exec")


def test_start_up_waits_for_healthy_servers_and_a_successful_migration() -> None:
    assert service("migrate")["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert str(service("migrate")["restart"]) == "no"
    for name in ("api", "generator", "deadletter"):
        assert service(name)["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "nats": {"condition": "service_healthy"},
        }
        assert service(name)["restart"] == "unless-stopped"


def test_generator_can_be_scaled_out() -> None:
    generator = service("generator")
    assert "container_name" not in generator
    assert "ports" not in generator
    assert mounts("generator")[storage_path()] == "audio"


def test_generator_gets_more_time_to_stop_than_its_own_shutdown_grace() -> None:
    grace = Settings.model_fields["generator_shutdown_grace"].default
    assert seconds(service("generator")["stop_grace_period"]) >= float(grace) + 10


# --- settings and the login role -------------------------------------------------------------
def test_every_serenade_process_gets_the_settings_it_requires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known = {f"SERENADE_{field.upper()}" for field in Settings.model_fields}
    for name in SERENADE_SERVICES:
        environment = container_environment(name)
        for variable in REQUIRED_SETTINGS:
            assert environment.get(variable), f"{name} lacks {variable}"
        declared = set(compose()["services"][name]["environment"])
        unknown = {key for key in declared if key.startswith("SERENADE_")} - known
        assert not unknown, f"{name} sets variables serenade does not read: {unknown}"
        # The settings model accepts them as the container would see them.
        for variable in known:
            monkeypatch.delenv(variable, raising=False)
        for key, value in environment.items():
            monkeypatch.setenv(key, value)
        settings = Settings()
        settings.require_database_url()
        assert settings.require_nats_servers() == ["nats://nats:4222"]
        assert settings.require_jwt_secret() == OPERATOR_ENV["SERENADE_JWT_SECRET"]
        assert settings.resolved_storage_url == "file:///var/lib/serenade/storage"


def test_passed_through_settings_reach_the_container_only_when_set() -> None:
    shell = OPERATOR_ENV | {"SERENADE_GENERATOR_CONCURRENCY": "16", "SERENADE_PROVIDER": "instant"}
    environment = container_environment("generator", shell)
    assert environment["SERENADE_GENERATOR_CONCURRENCY"] == "16"
    assert environment["SERENADE_PROVIDER"] == "instant"
    assert "SERENADE_PUBLIC_URL" not in environment
    assert container_environment("generator")["SERENADE_PROVIDER"] == "local"


def test_services_log_in_as_the_role_serenade_never_as_the_superuser() -> None:
    superuser = container_environment("postgres")["POSTGRES_USER"]
    password = OPERATOR_ENV["SERENADE_DB_PASSWORD"]
    for name in SERENADE_SERVICES:
        dsn = urlsplit(container_environment(name)["SERENADE_DATABASE_URL"])
        assert dsn.scheme in {"postgresql", "postgres"}
        assert dsn.username == "serenade"
        assert dsn.username != superuser
        assert dsn.password == password
        assert (dsn.hostname, dsn.port, dsn.path) == ("postgres", 5432, "/serenade")
    # The role is made by the script the postgres image runs on its first start.
    init_scripts = {
        target: source
        for target, source in mounts("postgres").items()
        if target.startswith("/docker-entrypoint-initdb.d/")
    }
    assert len(init_scripts) == 1
    # The entrypoint runs *.sql with psql (and ignores unknown extensions).
    assert next(iter(init_scripts)).endswith(".sql")
    script = (ROOT / next(iter(init_scripts.values()))).read_text(encoding="utf-8")
    assert "NOSUPERUSER NOBYPASSRLS" in script
    assert "WITH INHERIT FALSE, SET TRUE" in script
    assert container_environment("postgres")["SERENADE_DB_PASSWORD"] == password


@pytest.mark.parametrize("secret", SECRETS)
def test_compose_refuses_to_start_without_each_secret(secret: str) -> None:
    shell = {key: value for key, value in OPERATOR_ENV.items() if key != secret}
    with pytest.raises(MissingVariableError, match=f"{secret}.*set {secret}"):
        compose(shell)
    with pytest.raises(MissingVariableError):
        compose(shell | {secret: ""})


def test_compose_file_holds_no_secret_values() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for secret in SECRETS:
        for match in re.finditer(rf"^\s*{secret}\s*:\s*(\S+)", text, re.MULTILINE):
            assert match[1] == f"${{{secret}:?set", f"{secret} is given a value: {match[0]}"


def test_audio_volume_is_shared_by_api_and_generator_where_storage_points() -> None:
    path = storage_path()
    assert mounts("api")[path] == mounts("generator")[path] == "audio"
    for name in SERENADE_SERVICES:
        assert container_environment(name)["SERENADE_STORAGE_URL"] == f"file://{path}"


def test_postgres_data_lives_in_its_volume() -> None:
    assert mounts("postgres")["/var/lib/postgresql/data"] == "postgres-data"


# --- the Dockerfile ---------------------------------------------------------------------------
def test_dockerfile_has_named_stages_on_an_exactly_pinned_base() -> None:
    stages = dockerfile_stages()
    assert [stage.name for stage in stages] == ["builder", "runtime"]
    for stage in stages:
        repository, _, tag = stage.image.partition(":")
        assert repository == "python"
        assert re.fullmatch(r"3\.11\.\d+-slim-[a-z]+", tag), f"{stage.image} is not exact"
    assert stages[0].image == stages[1].image, "the venv is built against the runtime's python"


def test_dockerfile_installs_the_project_in_the_builder_and_copies_only_its_venv() -> None:
    builder, runtime = dockerfile_stages()
    installs = [run.arguments for run in builder.all("RUN") if "pip install" in run.arguments]
    assert installs, "the builder runs pip install"
    assert re.search(r"pip install (--\S+ )*\.(\s|$)", installs[-1]), "pip install . (the project)"
    venv = builder.all("RUN")[0].arguments.split()[-1]
    assert builder.all("RUN")[0].arguments.startswith("python -m venv")
    copies = [copy for copy in runtime.all("COPY") if copy.flags().get("from") == "builder"]
    assert [copy.arguments.split()[-2:] for copy in copies] == [[venv, venv]]
    assert stage_env(runtime)["PATH"].startswith(f"{venv}/bin:")
    assert not [run for run in runtime.all("RUN") if "pip" in run.arguments]


def test_dockerfile_runs_as_a_numeric_non_root_user() -> None:
    user = final_stage().last("USER").arguments
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), "a numeric uid, so that runAsNonRoot-style checks can verify it"
    assert int(uid) != 0
    assert not gid or (gid.isdigit() and int(gid) != 0)


def test_dockerfile_entrypoint_is_serenade_with_a_default_command_the_cli_accepts() -> None:
    runtime = final_stage()
    assert runtime.last("ENTRYPOINT").exec_form() == ["serenade"]
    default = runtime.last("CMD").exec_form()
    subcommand = cli.get_command(click.Context(cli), default[0])
    assert subcommand is not None
    subcommand.make_context(default[0], default[1:])
    assert runtime.last("EXPOSE").arguments.split() == ["8000"]
    assert stage_env(runtime)["PYTHONUNBUFFERED"] == "1"


def test_dockerfile_bakes_in_no_secret() -> None:
    for stage in dockerfile_stages():
        for instruction in stage.instructions:
            if instruction.keyword in {"ENV", "ARG", "LABEL"}:
                assert not re.search(
                    r"SECRET|PASSWORD|TOKEN|DATABASE_URL", instruction.arguments, re.IGNORECASE
                ), f"{instruction.keyword} {instruction.arguments}"
    assert dockerignore_excludes(".env")
    assert dockerignore_excludes(".serenade/dev-secret")
    assert dockerignore_excludes(".git/config")
    assert dockerignore_excludes(".venv/bin/python")
    assert dockerignore_excludes("shared/stale.pyc")


def test_build_context_holds_everything_the_dockerfile_copies() -> None:
    sources: list[str] = []
    for stage in dockerfile_stages():
        for copy in stage.all("COPY"):
            if "from" in copy.flags():
                continue
            words = [word for word in copy.arguments.split() if not word.startswith("--")]
            sources += words[:-1]
    assert {"pyproject.toml", "README.md", "shared", "services"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert not dockerignore_excludes(source), f"COPY {source}: excluded by .dockerignore"
    # Every module and migration of the package reaches the image, caches do not.
    for folder in ("shared", "services"):
        for path in (ROOT / folder).rglob("*"):
            relative = path.relative_to(ROOT).as_posix()
            if "__pycache__" in relative:
                assert dockerignore_excludes(relative)
            elif path.suffix in {".py", ".sql"}:
                assert not dockerignore_excludes(relative), f"{relative} is left out of the image"


def test_image_prepares_the_storage_folder_compose_mounts_for_its_user() -> None:
    runtime = final_stage()
    uid = runtime.last("USER").arguments.partition(":")[0]
    environment = stage_env(runtime)
    assert environment["SERENADE_STORAGE_URL"] == f"file://{storage_path()}"
    prepared = " ".join(run.arguments for run in runtime.all("RUN"))
    assert storage_path() in prepared, "a named volume takes the owner of the folder it hides"
    assert f"--owner={uid}" in prepared
