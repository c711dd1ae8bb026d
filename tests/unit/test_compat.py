"""Every reach into a library's undocumented parts lives in a ``compat`` module that names the
versions it was written for; on any other version this fails, loudly, before the reach does
something quieter."""

from __future__ import annotations

import importlib
from importlib.metadata import version
from pathlib import Path

import pytest

COMPAT_MODULES = ("shared.compat", "services.api.common.compat")


@pytest.mark.parametrize("name", COMPAT_MODULES)
def test_the_installed_libraries_are_the_versions_the_compat_module_was_written_for(
    name: str,
) -> None:
    written_for: dict[str, str] = importlib.import_module(name).WRITTEN_FOR
    assert written_for, f"{name} names no library"
    for distribution, expected in written_for.items():
        installed = version(distribution)
        assert installed == expected, (
            f"{name} reaches into {distribution}'s undocumented parts and was written for"
            f" {distribution} {expected}, but {installed} is installed: check each reach its"
            " docstring lists against the new version, then update WRITTEN_FOR"
        )


ROOT = Path(__file__).resolve().parents[2]
# What a reach looks like in the source: a private package, protocol internals, a subclassed
# server whose methods are overridden.
_REACHES = ("._internal", "uvicorn.protocols", "(uvicorn.Server)")


def test_no_module_outside_the_compat_modules_reaches_into_a_library() -> None:
    compat_files = {ROOT / (name.replace(".", "/") + ".py") for name in COMPAT_MODULES}
    found = [
        f"{path.relative_to(ROOT)}: {reach}"
        for folder in ("shared", "services")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path not in compat_files
        for reach in _REACHES
        if reach in path.read_text()
    ]
    assert found == []
