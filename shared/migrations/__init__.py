"""Versioned SQL migrations and the runner that applies them (``serenade migrate``)."""

from shared.migrations.runner import (
    APP_ROLES,
    Migration,
    MigrationError,
    apply_migrations,
    load_migrations,
)

__all__ = ["APP_ROLES", "Migration", "MigrationError", "apply_migrations", "load_migrations"]
