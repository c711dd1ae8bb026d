"""The development JWT secret: generated once and kept in the data directory."""

from __future__ import annotations

import secrets
from pathlib import Path

__all__ = ["dev_secret_path", "load_or_create_dev_secret", "read_dev_secret"]


def dev_secret_path(data_dir: Path, name: str = "jwt_secret") -> Path:
    return data_dir / name


def read_dev_secret(data_dir: Path, name: str = "jwt_secret") -> str | None:
    path = dev_secret_path(data_dir, name)
    return path.read_text().strip() if path.exists() else None


def load_or_create_dev_secret(data_dir: Path, name: str = "jwt_secret") -> str:
    """The secret ``name`` kept in ``data_dir`` (the JWT secret, the local payments' webhook
    secret), created (readable by its owner only) the first time."""
    existing = read_dev_secret(data_dir, name)
    if existing:
        return existing
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path = dev_secret_path(data_dir, name)
    path.touch(mode=0o600)
    path.write_text(secret + "\n")
    return secret
