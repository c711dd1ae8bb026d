"""FastStream's ``Context`` resolved on the event loop, not in a worker thread.

fast_depends runs a custom field's ``use`` in a worker thread when it is a plain function, so
every ``Context(...)`` parameter of a handler cost a thread hop per message, and the wait for
the GIL to come back. The pull loop fetches the next message only once the handler returns, so
the hops held the generator to about a hundred messages a second whatever its concurrency.
Resolving a context entry is a dictionary lookup: as a coroutine it stays on the loop.
"""

from __future__ import annotations

from typing import Any

# The class behind ``faststream.Context(...)`` (a factory function); faststream is pinned.
from faststream._internal.context import Context

__all__ = ["LoopContext"]


class LoopContext(Context):
    """``Context(name)``, resolved without leaving the event loop."""

    async def use(self, /, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return super().use(**kwargs)
