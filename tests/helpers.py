"""Conveniences of the tests; the servers and service processes they drive come from
``services.launcher``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import nats
import orjson

from services.launcher import wait_until

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg

__all__ = ["SubjectRecorder", "wait_for"]

# Tests wait on a condition with a deadline, never sleep and hope: the launcher's own wait.
wait_for = wait_until


class SubjectRecorder:
    """Records every message on a subject (core NATS subscription; sees stream publishes)."""

    def __init__(self) -> None:
        self.messages: list[Msg] = []
        self._nc: NatsClient | None = None

    async def start(self, url: str, subject: str) -> SubjectRecorder:
        self._nc = await nats.connect(url)
        await self._nc.subscribe(subject, cb=self._record)
        await self._nc.flush()
        return self

    async def _record(self, msg: Msg) -> None:
        self.messages.append(msg)

    def payloads(self, subject: str | None = None) -> list[dict[str, Any]]:
        return [
            orjson.loads(msg.data)
            for msg in self.messages
            if subject is None or msg.subject == subject
        ]

    async def stop(self) -> None:
        if self._nc is not None:
            await self._nc.close()
