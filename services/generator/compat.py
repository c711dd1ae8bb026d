"""Where the generator reaches into a library's undocumented parts, and the versions it was
written for (``tests/unit/test_compat.py`` fails on any other: read this again before
upgrading).

FastStream's ``Context`` resolved on the event loop, not in a worker thread: fast_depends runs a
custom field's ``use`` in a worker thread when it is a plain function, so every ``Context(...)``
parameter of a handler cost a thread hop per message, and the wait for the GIL to come back. The
pull loop fetches the next message only once the handler returns, so the hops held the generator
to about a hundred messages a second whatever its concurrency (measured: the generator bench).
Resolving a context entry is a dictionary lookup: as a coroutine it stays on the loop.
"""

from __future__ import annotations

from typing import Any, Final

# The class behind ``faststream.Context(...)`` (a factory function): private.
from faststream._internal.context import Context

__all__ = ["WRITTEN_FOR", "LoopContext"]

# Distribution name -> the version whose internals this module relies on.
WRITTEN_FOR: Final = {"faststream": "0.7.8"}


class LoopContext(Context):
    """``Context(name)``, resolved without leaving the event loop."""

    async def use(self, /, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return super().use(**kwargs)
