"""The development JWT secret: generated once and kept in the data directory."""

from __future__ import annotations

import secrets
from pathlib import Path

__all__ = ["dev_secret_path", "load_or_create_dev_secret", "read_dev_secret"]


def dev_secret_path(data_dir: Path) -> Path:
    return data_dir / "jwt_secret"


def read_dev_secret(data_dir: Path) -> str | None:
    path = dev_secret_path(data_dir)
    return path.read_text().strip() if path.exists() else None


def load_or_create_dev_secret(data_dir: Path) -> str:
    """The secret kept in ``data_dir``, created (readable by its owner only) the first time."""
    existing = read_dev_secret(data_dir)
    if existing:
        return existing
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path = dev_secret_path(data_dir)
    path.touch(mode=0o600)
    path.write_text(secret + "\n")
    return secret
