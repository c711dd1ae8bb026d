"""The AsyncAPI documents of the generator and the dead-letter service: each describes every
subject of the contract with its payload schema, every reference in it resolves, its operations
say what the service really sends and receives, and the committed copy (``make docs``) is the
one the code makes now."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import orjson
import pytest

from services.deadletter import asyncapi as deadletter_asyncapi
from services.generator import asyncapi as generator_asyncapi
from shared.events import (
    DeadLettered,
    OccasionUpcoming,
    OrderCompleted,
    OrderCreated,
    VariantRequested,
    VariantStatusChanged,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from shared.events import Event

ROOT = Path(__file__).resolve().parents[2]
# The official AsyncAPI 3.0.0 JSON Schema (see tests/schemas/README.md).
ASYNCAPI_SCHEMA = ROOT / "tests" / "schemas" / "asyncapi-3.0.0.json"
RENDERERS: dict[str, Callable[[], bytes]] = {
    "generator": generator_asyncapi.render,
    "deadletter": deadletter_asyncapi.render,
}
# The contract's subjects (written out, as the contract has them) and their events.
CONTRACT: dict[str, type[Event]] = {
    "serenade.orders.created": OrderCreated,
    "serenade.variants.requested": VariantRequested,
    "serenade.variants.status": VariantStatusChanged,
    "serenade.orders.completed": OrderCompleted,
    "serenade.deadletter.<service>": DeadLettered,
    "serenade.occasions.upcoming": OccasionUpcoming,
}


def document(service: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(RENDERERS[service]())
    return loaded


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node`` itself, or what its ``$ref`` (a local JSON pointer) points at."""
    while "$ref" in node:
        reference = node["$ref"]
        assert reference.startswith("#/"), reference
        target: Any = doc
        for part in reference[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def carries(address: str, subject: str) -> bool:
    if subject.endswith("<service>"):
        return address.startswith("serenade.deadletter.")
    return address == subject


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in references(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in references(item)]
    return []


def operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    """(action, channel address) of every operation."""
    return {
        (operation["action"], resolve(doc, operation["channel"])["address"])
        for operation in doc["operations"].values()
    }


@pytest.mark.parametrize("service", RENDERERS)
def test_every_contract_subject_is_described_with_its_event_payload(service: str) -> None:
    doc = document(service)
    assert doc["asyncapi"].startswith("3.")
    for subject, model in CONTRACT.items():
        channels = [c for c in doc["channels"].values() if carries(c["address"], subject)]
        assert channels, f"{service}: no channel for {subject}"
        for channel in channels:
            assert channel["messages"], f"{service}: {subject} has no message"
            for reference in channel["messages"].values():
                payload = resolve(doc, resolve(doc, reference)["payload"])
                assert payload.get("type") == "object", f"{service}: {subject}: {payload}"
                # Every field of the event, documented (a constant documents itself).
                assert set(model.model_fields) <= set(payload["properties"]), subject
                for name, field in payload["properties"].items():
                    described = field.get("description") or resolve(doc, field).get("description")
                    assert described or "const" in field, f"{service}: {subject}.{name}"


@pytest.mark.parametrize("service", RENDERERS)
def test_document_is_valid_asyncapi_by_the_official_schema(service: str) -> None:
    schema = orjson.loads(ASYNCAPI_SCHEMA.read_bytes())
    validator = jsonschema.Draft7Validator(schema)
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document(service))
    ]
    assert errors == []
    # A check @asyncapi/parser adds to the schema: an operation sends or receives only messages
    # of its own channel.
    doc = document(service)
    for operation_id, operation in doc["operations"].items():
        channel = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"{channel}/messages/"), operation_id


def test_the_official_schema_refuses_a_broken_document() -> None:
    schema = orjson.loads(ASYNCAPI_SCHEMA.read_bytes())
    doc = document("generator")
    doc["channels"]["broken"] = {"address": 5, "messages": "none"}
    assert not jsonschema.Draft7Validator(schema).is_valid(doc)


@pytest.mark.parametrize("service", RENDERERS)
def test_every_reference_resolves_and_names_the_real_correlation_header(service: str) -> None:
    doc = document(service)
    for reference in references(doc):
        resolve(doc, {"$ref": reference})
    for message in doc["components"]["messages"].values():
        assert message["correlationId"]["location"] == "$message.header#/X-Correlation-Id"
    assert "EmptyPayload" not in doc["components"]["schemas"], "a payload is left undescribed"


@pytest.mark.parametrize("service", RENDERERS)
def test_every_message_is_named_after_the_event_it_carries(service: str) -> None:
    doc = document(service)
    for channel in doc["channels"].values():
        for message_id, reference in channel["messages"].items():
            message = resolve(doc, reference)
            payload = message["payload"]
            event = payload["$ref"].rsplit("/", 1)[-1] if "$ref" in payload else payload["title"]
            assert message_id == message["name"] == event, (service, channel["address"])
    for operation in doc["operations"].values():
        for reference in operation["messages"]:
            assert resolve(doc, reference)["name"] == reference["$ref"].rsplit("/", 1)[-1]
    generic = {"Message", "SubscribeMessage", "PublishMessage"}
    assert not {key.rsplit(":", 1)[-1] for key in doc["components"]["messages"]} & generic


def test_generator_document_says_what_the_generator_receives_and_sends() -> None:
    assert operations(document("generator")) == {
        ("receive", "serenade.variants.requested"),
        ("send", "serenade.variants.status"),
        ("send", "serenade.orders.completed"),
        ("send", "serenade.deadletter.generator"),
    }


def test_deadletter_document_says_what_the_dead_letter_service_receives_and_sends() -> None:
    doc = document("deadletter")
    found = operations(doc)
    assert ("receive", "serenade.deadletter.>") in found
    assert {
        ("send", "serenade.variants.requested"),
        ("send", "serenade.variants.status"),
        ("send", "serenade.orders.completed"),
        ("send", "serenade.occasions.upcoming"),
    } <= found
    advisories = [a for _, a in found if a.startswith("$JS.EVENT.ADVISORY.")]
    assert advisories, "the advisories it stores are described too"


@pytest.mark.parametrize("service", RENDERERS)
def test_committed_document_is_what_make_docs_writes_now(service: str) -> None:
    committed = ROOT / "docs" / "asyncapi" / f"{service}.json"
    assert committed.is_file(), f"{committed} is missing: run `make docs`"
    assert committed.read_bytes() == RENDERERS[service](), (
        f"{committed.relative_to(ROOT)} is stale: run `make docs` and commit it"
    )
