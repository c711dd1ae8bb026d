"""An idle stack logs nothing at error level: an empty pull is routine, not an incident.

The generator and the dead-letter service run as processes against a NATS server of their own
with nothing to do, their pull requests expiring every 50 ms instead of every 2 s, so that a few
seconds hold as many empty pulls as several minutes of a real idle stack. nats-py 2.15+ raised
the builtin TimeoutError on some of them, FastStream's pull loop died and was restarted with an
error-level traceback ("Task-N raised an exception, retrying"): an operator's alert on error
lines fired for nothing.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import nats
import pytest

from services.deadletter.consumers import ADVISORY_DURABLE, ENVELOPE_DURABLE
from services.generator.consumer import DURABLE as GENERATOR_DURABLE
from services.launcher import EmbeddedNats, ServiceProcess
from shared.events import STREAM_NAME
from shared.stream import ADVISORY_STREAM
from tests.helpers import wait_for
from tests.integration.generator.support import log_lines

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from shared.settings import Settings
    from tests.conftest import DatabaseFactory

pytestmark = pytest.mark.slow

_FETCH_TIMEOUT = 0.05
# At least a hundred empty pulls per consumer (a real idle stack's few minutes).
_IDLE_SECONDS = 100 * _FETCH_TIMEOUT
_CONSUMERS = (
    (STREAM_NAME, GENERATOR_DURABLE),
    (STREAM_NAME, ENVELOPE_DURABLE),
    (ADVISORY_STREAM, ADVISORY_DURABLE),
)


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[str]:
    server = EmbeddedNats(tmp_path / "nats")
    yield server.start()
    server.stop()


async def _all_pulling(url: str) -> bool:
    """Every durable consumer has a pull request waiting: every service's fetch loop runs."""
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        for stream, durable in _CONSUMERS:
            try:
                info = await js.consumer_info(stream, durable)
            except nats.js.errors.NotFoundError:
                return False
            if not info.num_waiting:
                return False
        return True
    finally:
        await client.close()


def _alarming(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        line
        for line in lines
        if line.get("level") in {"error", "critical"}
        or "raised an exception" in str(line.get("message"))
    ]


async def test_an_idle_stack_logs_no_error_over_many_empty_pulls(
    settings_factory: Callable[..., Settings],
    make_database: DatabaseFactory,
    own_nats: str,
    tmp_path: Path,
) -> None:
    settings = settings_factory(
        database_url=await make_database(), nats_url=own_nats, nats_fetch_timeout=_FETCH_TIMEOUT
    )
    services = [
        ServiceProcess([name], settings, tmp_path / f"{name}.log").start()
        for name in ("generator", "deadletter")
    ]
    try:

        async def pulling() -> bool:
            for service in services:
                assert service.alive(), f"{service.command} exited:\n{service.log()}"
            return await _all_pulling(own_nats)

        await wait_for(pulling, timeout=60, what="every consumer to pull")
        # Nothing to wait for here: the point is a span in which nothing happens.
        started = time.monotonic()
        await asyncio.sleep(_IDLE_SECONDS)
        assert time.monotonic() - started >= _IDLE_SECONDS
        assert await _all_pulling(own_nats)
    finally:
        codes = [service.terminate() for service in services]

    for service in services:
        lines = log_lines(service.log())
        assert lines, f"{service.command} wrote no JSON log line:\n{service.log()}"
        assert _alarming(lines) == [], service.log()
    assert codes == [0, 0]
