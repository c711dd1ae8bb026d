"""The whole SERENADE stream, read from its start with an ordered consumer (what an integration
replaying history would do), for the invariants to count events by order and variant."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from nats.js.api import DeliverPolicy

from shared.events import STREAM_NAME

if TYPE_CHECKING:
    from nats.js import JetStreamContext

__all__ = ["StreamMessage", "read_stream"]


@dataclass(frozen=True, slots=True)
class StreamMessage:
    sequence: int
    subject: str
    msg_id: str | None
    payload: Any  # the parsed JSON, or None when it is not JSON


async def read_stream(js: JetStreamContext, *, timeout: float = 10.0) -> list[StreamMessage]:
    """Every message now in the stream, in stream order."""
    state = (await js.stream_info(STREAM_NAME)).state
    if not state.messages:
        return []
    last = state.last_seq
    subscription = await js.subscribe(
        "serenade.>",
        stream=STREAM_NAME,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
        pending_bytes_limit=256 * 1024 * 1024,
    )
    found: list[StreamMessage] = []
    try:
        while True:
            message = await subscription.next_msg(timeout=timeout)
            sequence = message.metadata.sequence.stream
            payload: Any = None
            with contextlib.suppress(orjson.JSONDecodeError):
                payload = orjson.loads(message.data)
            headers = message.headers or {}
            found.append(
                StreamMessage(sequence, message.subject, headers.get("Nats-Msg-Id"), payload)
            )
            if sequence >= last:
                return found
    finally:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
