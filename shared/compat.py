"""Where ``shared`` reaches into a library's undocumented parts, and the versions it was written
for (``tests/unit/test_compat.py`` fails on any other: read this again before upgrading).

- uvicorn: ``Server.capture_signals`` is replaced by a no-op. The services that embed a server
  (the generator's and dead-letter service's telemetry endpoint) own SIGTERM and SIGINT; uvicorn
  would take them over while it serves and re-raise them when it stops.
- asyncpg: the pool's ``reset`` (documented) is given a no-op, which relies on what asyncpg's
  release does before it (roll back a transaction left open) and on what its default reset
  undoes (advisory locks, cursors, LISTEN, session settings) being things no pooled connection
  of ours holds: every unit of work sets its role and claims SET LOCAL. The default reset was one
  more round trip per transaction (measured: ``make bench``, "one round trip per caller
  transaction").
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Final

import uvicorn

if TYPE_CHECKING:
    from collections.abc import Iterator

    import asyncpg

__all__ = ["WRITTEN_FOR", "EmbeddedServer", "keep_session"]

# Distribution name -> the version whose internals this module relies on.
WRITTEN_FOR: Final = {"uvicorn": "0.54.0", "asyncpg": "0.32.0"}


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the service that embeds it owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release, after asyncpg's own rollback of a transaction left open:
    nothing more (see the module's docstring)."""
