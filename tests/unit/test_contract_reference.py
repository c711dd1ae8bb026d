"""docs/contract.md, the integrator's reference, is what the code says now (``make docs``), and
the README points at what exists: the reference, and every target ``make help`` lists."""

from __future__ import annotations

import re
from pathlib import Path

from services.api.client_schemas import openapi_document
from services.contract_reference import render
from shared.contract_docs import CONTRACT_SUBJECTS
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "contract.md"


def test_committed_reference_is_what_make_docs_writes_now() -> None:
    assert REFERENCE.is_file(), "docs/contract.md is missing: run `make docs`"
    assert REFERENCE.read_text(encoding="utf-8") == render(), (
        "docs/contract.md is stale: run `make docs` and commit it"
    )


def test_reference_names_every_setting_event_and_operation() -> None:
    text = render()
    for name, field in Settings.model_fields.items():
        assert f"`SERENADE_{name.upper()}`" in text
        assert field.description, f"setting {name} has no description"
        assert " ".join(field.description.split()) in text
    for subject in CONTRACT_SUBJECTS:
        assert f"`{subject.address}`" in text
    for operation in ("`POST /v1/orders`", "`GET /v1/share/{share_token}`", "`GET /media/"):
        assert operation in text
    # Who may call what, read from the routes' guards.
    assert "| `GET /v1/admin/failed-jobs` | `service_role` |" in text
    assert "| `GET /v1/share/{share_token}` | anyone |" in text
    assert "| `POST /v1/orders` | authenticated: the owner (`service_role` 403) |" in text
    assert "| `GET /v1/orders/{order_id}` | authenticated (the owner) or `service_role` |" in text
    for pointer in ("/schema/openapi.json", "docs/asyncapi/generator.json", "problem+json"):
        assert pointer in text


def test_reference_explains_every_error_status_the_api_documents() -> None:
    text = render()
    statuses = {
        status
        for item in openapi_document()["paths"].values()
        for operation in item.values()
        for status in operation["responses"]
        if int(status) >= 400
    }
    assert statuses
    assert [status for status in sorted(statuses) if f"| {status} |" not in text] == []


def test_readme_links_lead_to_files_of_the_repository() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#:]+)\)", readme)
    assert "docs/contract.md" in targets
    missing = [target for target in targets if not (ROOT / target).exists()]
    assert missing == []


def test_readme_names_every_make_target() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = re.findall(r"^([a-z-]+):.*## ", makefile, flags=re.MULTILINE)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    unnamed = [t for t in targets if t != "help" and f"`{t}`" not in readme]
    assert unnamed == []
