"""Provider selection: ``SERENADE_PROVIDER`` names one, the chaos settings may wrap it.

- ``instant``: a tiny valid WAV (load tests, drills);
- ``local``: real songs rendered here (``providers.local``, imported only when chosen);
- ``package.module:Class``: a third party's class, made with no arguments.
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING

from .base import GeneratedSong, SongProvider, SongRequest, concurrency_limit
from .chaos import ChaosProvider, InjectedFailure
from .instant import InstantProvider

if TYPE_CHECKING:
    from shared.settings import Settings

__all__ = [
    "ChaosProvider",
    "GeneratedSong",
    "InjectedFailure",
    "InstantProvider",
    "ProviderUnavailable",
    "SongProvider",
    "SongRequest",
    "concurrency_limit",
    "load_provider",
    "provider_by_name",
    "slots_for",
]

_LOCAL_MODULE = "services.generator.providers.local"


class ProviderUnavailable(RuntimeError):  # noqa: N818 - reads better where it is raised
    """The configured provider cannot be loaded; raised at startup, never per message."""


def load_provider(settings: Settings) -> SongProvider:
    """The configured provider, wrapped by the chaos settings when either is set."""
    provider = provider_by_name(settings.provider)
    if settings.provider_failure_rate > 0 or settings.provider_delay_ms > 0:
        return ChaosProvider(
            provider,
            failure_rate=settings.provider_failure_rate,
            delay_seconds=settings.provider_delay_ms / 1000,
        )
    return provider


def slots_for(concurrency: int, provider: SongProvider) -> int:
    """Variants one process works on at once: ``concurrency`` (SERENADE_GENERATOR_CONCURRENCY),
    or the provider's own limit when that is lower."""
    limit = concurrency_limit(provider)
    return concurrency if limit is None else min(concurrency, limit)


def provider_by_name(name: str) -> SongProvider:
    """``instant``, ``local`` or ``package.module:Class``."""
    spec = name.strip()
    if spec == "instant":
        return InstantProvider()
    if spec == "local":
        return _from_class_path(f"{_LOCAL_MODULE}:LocalProvider", label="the local provider")
    if ":" in spec:
        return _from_class_path(spec, label=f"provider {spec!r}")
    raise ProviderUnavailable(
        f"unknown provider {spec!r} in SERENADE_PROVIDER: "
        "use local, instant or package.module:Class"
    )


def _from_class_path(path: str, *, label: str) -> SongProvider:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ProviderUnavailable(f"{label}: write it as package.module:Class")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ProviderUnavailable(f"{label} cannot be imported: {error}") from error
    factory = getattr(module, attribute, None)
    if factory is None:
        raise ProviderUnavailable(f"{label}: {module_name} has no attribute {attribute!r}")
    if not callable(factory):
        raise ProviderUnavailable(f"{label}: {attribute!r} is not a class")
    try:
        provider = factory()
    except Exception as error:
        raise ProviderUnavailable(f"{label} could not be created: {error!r}") from error
    if not isinstance(provider, SongProvider) or not inspect.iscoroutinefunction(provider.generate):
        raise ProviderUnavailable(
            f"{label} is not a SongProvider: it needs `async def generate(self, request)`"
        )
    return provider
