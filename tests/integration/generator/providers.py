"""Third-party-style providers for the tests, loaded through ``package.module:Class``."""

from __future__ import annotations

from typing import ClassVar

from services.generator.providers.base import GeneratedSong, SongRequest
from services.generator.providers.instant import InstantProvider


class FlakyProvider:
    """Fails the first attempt at each variant, succeeds after (a transient failure)."""

    attempts: ClassVar[dict[tuple[str, int], int]] = {}

    def __init__(self) -> None:
        self._inner = InstantProvider()

    async def generate(self, request: SongRequest) -> GeneratedSong:
        key = (str(request.order_id), request.variant_number)
        FlakyProvider.attempts[key] = FlakyProvider.attempts.get(key, 0) + 1
        if FlakyProvider.attempts[key] == 1:
            raise ConnectionError("the song service hung up (first attempt)")
        return await self._inner.generate(request)


class NotAProvider:
    """Has no ``generate``: refused at startup."""
