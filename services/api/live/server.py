"""A uvicorn server that ends open event streams before it waits for responses to finish.

On shutdown uvicorn stops accepting, waits up to ``timeout_graceful_shutdown`` for open
responses to complete and only then runs the app's lifespan shutdown. An event stream of an
unfinished order never completes by itself, so without this every shutdown with a client
watching would wait out the whole grace period and then cut the stream mid-response.
"""

from litestar import Litestar

from services.api.common.compat import HookedServer
from services.api.live import LiveEvents

__all__ = ["StreamClosingServer", "end_streams"]


def end_streams(app: Litestar) -> None:
    """End every open event stream of ``app`` cleanly (each sends its last bytes and closes)."""
    live = app.state.get("live")
    if isinstance(live, LiveEvents):
        live.hub.close()


class StreamClosingServer(HookedServer):
    """``uvicorn.Server`` for the API: event streams end first, then the usual shutdown."""

    def before_shutdown(self) -> None:
        if isinstance(self.config.app, Litestar):
            end_streams(self.config.app)
