"""A wrapper that makes any provider slower or less reliable on purpose, for drills and tests
(``SERENADE_PROVIDER_DELAY_MS`` and ``SERENADE_PROVIDER_FAILURE_RATE``)."""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING

from .base import concurrency_limit

if TYPE_CHECKING:
    from .base import GeneratedSong, SongProvider, SongRequest

__all__ = ["ChaosProvider", "InjectedFailure"]


class InjectedFailure(RuntimeError):  # noqa: N818 - it is what the log and the dead letter show
    """An attempt failed on purpose (SERENADE_PROVIDER_FAILURE_RATE)."""


class ChaosProvider:
    """Waits ``delay_seconds``, then fails a ``failure_rate`` fraction of attempts, then asks
    ``inner``. The delay comes first so that a failing attempt also takes time, as real ones do."""

    def __init__(
        self,
        inner: SongProvider,
        *,
        failure_rate: float = 0.0,
        delay_seconds: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError("failure_rate must be between 0 and 1")
        if delay_seconds < 0:
            raise ValueError("delay_seconds must not be negative")
        self.inner = inner
        self.failure_rate = failure_rate
        self.delay_seconds = delay_seconds
        # Not for security: which drill attempts fail. Seed it for a repeatable sequence.
        self._rng = rng or random.Random()  # noqa: S311

    @property
    def max_concurrency(self) -> int | None:
        """The wrapped provider's limit: waiting first adds none of its own."""
        return concurrency_limit(self.inner)

    async def generate(self, request: SongRequest) -> GeneratedSong:
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if self.failure_rate and self._rng.random() < self.failure_rate:
            raise InjectedFailure(
                f"injected failure (SERENADE_PROVIDER_FAILURE_RATE={self.failure_rate:g})"
            )
        return await self.inner.generate(request)
