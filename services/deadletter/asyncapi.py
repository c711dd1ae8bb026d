"""``python -m services.deadletter.asyncapi PATH``: write the dead-letter service's AsyncAPI
document (``make docs`` writes
docs/asyncapi/deadletter.json). The running service serves the same document at ``/asyncapi.json``
on its metrics port."""

from __future__ import annotations

import sys

from services.deadletter.app import asyncapi_document, build_app
from shared.contract_docs import DOCUMENT_SETTINGS, render_json, write_document

__all__ = ["main", "render"]


def render() -> bytes:
    """The document as committed: stable JSON."""
    return render_json(asyncapi_document(build_app(DOCUMENT_SETTINGS)))


def main(argv: list[str] | None = None) -> int:
    return write_document(
        render, sys.argv[1:] if argv is None else argv, program="services.deadletter.asyncapi"
    )


if __name__ == "__main__":
    sys.exit(main())
