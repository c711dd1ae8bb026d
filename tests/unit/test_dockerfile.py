"""The Dockerfile and ``.dockerignore``, checked without Docker.

Docker cannot run where the suite runs, so these tests read the Dockerfile's instructions and
``.dockerignore`` the way the builder would and hold them to the deployment's design: one image
for every serenade process, built in a builder stage and run from its venv, a non-root runtime,
the serenade command as entrypoint, no secret baked in, and a build context that holds what the
image needs. compose.yaml has its own checks (``test_compose.py``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import click
import yaml

from services.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def storage_path() -> str:
    """Where compose.yaml mounts the audio volume (SERENADE_STORAGE_URL, a file URL)."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    url = urlsplit(compose["services"]["api"]["environment"]["SERENADE_STORAGE_URL"])
    assert url.scheme == "file"
    return str(url.path)


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
