"""The launcher's service processes, as ``serenade dev``, the drills and the bench use them: ready
when the service says so, reported with its output when it dies first, stopped cleanly."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from services.launcher import ServiceNotReadyError, ServiceProcess, stop_all

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from shared.settings import Settings


async def test_a_service_that_dies_at_start_is_reported_with_its_output(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    api = ServiceProcess(["api"], settings_factory(jwt_secret=None), tmp_path / "api.log")
    try:
        with pytest.raises(ServiceNotReadyError) as raised:
            await api.start().wait_ready(timeout=60)
    finally:
        stop_all([api], grace=10)

    message = str(raised.value)
    assert message.startswith("api exited:")
    assert "SERENADE_JWT_SECRET" in message  # its own words, to tell why


async def test_services_piped_line_by_line_become_ready_and_stop_cleanly_together(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(metrics_port=0)
    lines: dict[str, list[str]] = {"generator": [], "deadletter": []}
    services = [ServiceProcess([name], settings, on_line=lines[name].append) for name in lines]
    try:
        for service in services:
            await service.start().wait_ready(timeout=60)
    finally:
        stop_all(services, grace=20)

    assert any("generator ready" in line for line in lines["generator"])
    assert any("started successfully" in line for line in lines["deadletter"])
    assert [service.process.returncode for service in services if service.process] == [0, 0]
