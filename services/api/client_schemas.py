"""The inputs of the app's TypeScript types (``make client``): the API's OpenAPI document and the
events' JSON Schema, rendered as stable bytes.

``python -m services.api.client_schemas FOLDER`` writes ``openapi.json`` and
``events.schema.json`` into FOLDER (clients/typescript); ``clients/typescript/generate.mjs``
turns them into ``api.d.ts`` and ``events.d.ts``, each headed by the SHA-256 of its input, so a
test can tell committed types from stale ones without running npm.
"""

import sys
from pathlib import Path
from typing import Any, Final

from litestar import Litestar

from services.api.app import create_app
from shared.contract_docs import events_json_schema, render_json
from shared.settings import Settings

__all__ = [
    "EVENTS_FILE",
    "OPENAPI_FILE",
    "document_app",
    "events_schema_bytes",
    "main",
    "openapi_bytes",
    "openapi_document",
]

OPENAPI_FILE: Final = "openapi.json"
EVENTS_FILE: Final = "events.schema.json"


def document_app() -> Litestar:
    """The API's app, only to describe it: no server, no lifespan, no I/O."""
    # Placeholder values only: making the app reads no database and signs nothing.
    settings = Settings(
        database_url="postgresql://localhost:5432/serenade",
        nats_url="nats://localhost:4222",
        jwt_secret="not-a-secret-only-for-documents",  # noqa: S106
        storage_url="file:///nonexistent/serenade-storage",
    )
    return create_app(settings)


def openapi_document(app: Litestar | None = None) -> dict[str, Any]:
    """The API's OpenAPI document, built in this process."""
    document: dict[str, Any] = (app or document_app()).openapi_schema.to_schema()
    return document


def openapi_bytes() -> bytes:
    return render_json(openapi_document())


def events_schema_bytes() -> bytes:
    return render_json(events_json_schema())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m services.api.client_schemas FOLDER\n")
        return 2
    folder = Path(args[0])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / OPENAPI_FILE).write_bytes(openapi_bytes())
    (folder / EVENTS_FILE).write_bytes(events_schema_bytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
