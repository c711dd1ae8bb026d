"""``python -m services.generator.asyncapi PATH``: write the generator's AsyncAPI document
(``make docs`` writes docs/asyncapi/generator.json). The running service serves the same
document at ``/asyncapi.json`` on its metrics port."""

from __future__ import annotations

import sys
from pathlib import Path

from shared.contract_docs import render_json
from shared.settings import Settings

from .app import asyncapi_document, build_app

__all__ = ["DOCUMENT_SETTINGS", "main", "render"]

# Placeholders: building the app connects to nothing; the document names this NATS server.
DOCUMENT_SETTINGS = Settings(
    nats_url="nats://localhost:4222",
    database_url="postgresql://localhost:5432/serenade",
    jwt_secret="not-a-secret-only-for-documents",  # noqa: S106 - never used to sign anything
)


def render() -> bytes:
    """The document as committed: stable JSON."""
    return render_json(asyncapi_document(build_app(DOCUMENT_SETTINGS)))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m services.generator.asyncapi PATH\n")
        return 2
    path = Path(args[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
