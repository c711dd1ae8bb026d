"""``/v1/orders/{order_id}/events``: an order's status as Server-Sent Events (its owner)."""

import uuid

from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from litestar.response import ServerSentEvent

from services.api.common.auth import user_only
from services.api.common.dependencies import Ctx, Db
from services.api.common.problems import problem_responses
from services.api.live import LiveEvents

__all__ = ["OrderEventsController"]

_DESCRIPTION = (
    "text/event-stream. First one `event: variant` per variant with its current status, then one "
    "per status change as it happens (data: the `serenade.variants.status` event as JSON), then "
    "one `event: order` (data: the `serenade.orders.completed` event) after which the stream "
    "closes; at once when the order is already final. Each event's `id:` is its `event_id`. "
    "The first events are made from the current state: fresh `event_id`s and a null "
    "`correlation_id`. `: keep-alive` comments keep idle connections open. A client that "
    "falls far behind is disconnected: reconnect (with `Last-Event-ID` or without) to resume "
    "from the current state, which comes first again. Close the EventSource on `order`, or it "
    "reconnects."
)


def _live(state: State) -> LiveEvents:
    live: LiveEvents = state.live
    return live


Live = NamedDependency[LiveEvents]


class OrderEventsController(Controller):
    path = "/v1/orders"
    tags = ("orders",)
    security = ({"BearerToken": []},)
    dependencies = {"live": Provide(_live, sync_to_thread=False)}  # noqa: RUF012 - Litestar's API

    @get(
        "/{order_id:uuid}/events",
        operation_id="streamOrderEvents",
        guards=[user_only],
        media_type="text/event-stream",
        response_description=_DESCRIPTION,
        responses=problem_responses(400, 401, 403, 404, 503),
    )
    async def order_events(
        self, ctx: Ctx, db: Db, live: Live, order_id: FromPath[uuid.UUID]
    ) -> ServerSentEvent:
        """The order's variant statuses live, until the order is final (its owner)."""
        stream = await live.open(db, ctx.caller, order_id)
        return ServerSentEvent(stream.messages())
