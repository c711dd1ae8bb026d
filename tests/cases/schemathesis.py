"""The schemathesis checks run by the short suite (tests/integration/api/test_schemathesis.py)
and the full one (the API abuse drill): no 5xx and nothing the OpenAPI document does not list."""

from __future__ import annotations

__all__ = ["CHECKS"]

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)
