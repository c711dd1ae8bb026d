"""Machine-readable descriptions of the contract's events, from the models in ``shared.events``.

- ``events_json_schema()``: one JSON Schema with every event as it is on the wire (the input of
  the app's TypeScript types);
- ``complete_asyncapi(document, ...)``: a service's AsyncAPI 3.0 document, as FastStream made it
  from its subscribers and publishers, completed so that it describes every subject of the
  contract with its payload schema. Subjects the service neither sends nor receives become
  channels without operations (AsyncAPI's way to say "exists, not used here").
- ``render_json(value)``: stable bytes (sorted keys, two-space indent, final newline), so that
  committed documents change only when what they describe does.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from shared.events import (
    CORRELATION_HEADER,
    SUBJECT_DEADLETTER_PREFIX,
    SUBJECT_OCCASION_UPCOMING,
    SUBJECT_ORDER_CANCELLED,
    SUBJECT_ORDER_COMPLETED,
    SUBJECT_ORDER_CREATED,
    SUBJECT_PAYMENT_REFUNDED,
    SUBJECT_PAYMENT_SUCCEEDED,
    SUBJECT_VARIANT_REQUESTED,
    SUBJECT_VARIANT_STATUS,
    DeadLettered,
    Event,
    OccasionUpcoming,
    OrderCancelled,
    OrderCompleted,
    OrderCreated,
    PaymentRefunded,
    PaymentSucceeded,
    VariantRequested,
    VariantStatusChanged,
)
from shared.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from pydantic_core import core_schema

__all__ = [
    "CONTRACT_SUBJECTS",
    "DOCUMENT_SETTINGS",
    "EVENT_MODELS",
    "ContractSubject",
    "complete_asyncapi",
    "events_json_schema",
    "render_json",
    "write_document",
]

# Placeholders for building a service's app only to describe it: building connects to nothing;
# the documents name this NATS server.
DOCUMENT_SETTINGS: Final = Settings(
    nats_url="nats://localhost:4222",
    database_url="postgresql://localhost:5432/serenade",
    jwt_secret="not-a-secret-only-for-documents",  # noqa: S106 - never used to sign anything
)


def write_document(render: Callable[[], bytes], argv: list[str], *, program: str) -> int:
    """The ``python -m services.<service>.asyncapi PATH`` command: write ``render()`` to PATH."""
    if len(argv) != 1:
        sys.stderr.write(f"usage: python -m {program} PATH\n")
        return 2
    path = Path(argv[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render())
    return 0


@dataclass(frozen=True, slots=True)
class ContractSubject:
    """One subject of the contract: its address (``{service}`` is a parameter), its event."""

    address: str
    model: type[Event]
    published_by: str

    @property
    def key(self) -> str:
        """``orders.created``, ``deadletter.{service}``: the address without ``serenade.``."""
        return self.address.removeprefix("serenade.")

    def covers(self, address: str) -> bool:
        """Whether a channel on ``address`` carries this subject's events."""
        if "{service}" in self.address:
            return address.startswith(f"{SUBJECT_DEADLETTER_PREFIX}.")
        return address == self.address


CONTRACT_SUBJECTS: Final = (
    ContractSubject(SUBJECT_ORDER_CREATED, OrderCreated, "api"),
    ContractSubject(
        SUBJECT_VARIANT_REQUESTED,
        VariantRequested,
        "api (new order, upsell, retry), deadletter (replay)",
    ),
    ContractSubject(SUBJECT_VARIANT_STATUS, VariantStatusChanged, "generator, deadletter"),
    ContractSubject(SUBJECT_ORDER_COMPLETED, OrderCompleted, "generator, deadletter"),
    ContractSubject(f"{SUBJECT_DEADLETTER_PREFIX}.{{service}}", DeadLettered, "any service"),
    ContractSubject(SUBJECT_OCCASION_UPCOMING, OccasionUpcoming, "deadletter (reminders)"),
    ContractSubject(SUBJECT_PAYMENT_SUCCEEDED, PaymentSucceeded, "api"),
    ContractSubject(SUBJECT_PAYMENT_REFUNDED, PaymentRefunded, "api"),
    ContractSubject(SUBJECT_ORDER_CANCELLED, OrderCancelled, "api"),
)
# Every event model of shared.events, in the contract's order.
EVENT_MODELS: Final[tuple[type[Event], ...]] = tuple(s.model for s in CONTRACT_SUBJECTS)

_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
_COMPONENT_SCHEMAS: Final = "#/components/schemas/"
_EMPTY_PAYLOAD: Final = f"{_COMPONENT_SCHEMAS}EmptyPayload"
_CORRELATION: Final = {
    "description": f"The `{CORRELATION_HEADER}` header: the id of the HTTP request that started "
    "it, also in the payload's `correlation_id`.",
    "location": f"$message.header#/{CORRELATION_HEADER}",
}
_HEADERS: Final = {
    "type": "object",
    "properties": {
        "Nats-Msg-Id": {
            "type": "string",
            "description": "The event's `event_id`: JetStream drops a duplicate within its window.",
        },
        CORRELATION_HEADER: {
            "type": "string",
            "description": "The correlation id, when an HTTP request started it.",
        },
    },
}


class _WireSchema(GenerateJsonSchema):
    """Events as serialized: every field is always present (``null`` where unset), so every
    field is required in the schema, defaults included."""

    def field_is_required(
        self,
        field: core_schema.ModelField | core_schema.DataclassField | core_schema.TypedDictField,
        total: bool,
    ) -> bool:
        return self.mode == "serialization" or super().field_is_required(field, total)


def _schemas(ref_template: str) -> dict[str, Any]:
    """Every event model's wire schema and the enums they use, keyed by name."""
    _, top = models_json_schema(
        [(model, "serialization") for model in EVENT_MODELS],
        ref_template=ref_template,
        schema_generator=_WireSchema,
    )
    definitions: dict[str, Any] = top["$defs"]
    return definitions


def events_json_schema() -> dict[str, Any]:
    """One JSON Schema: any serenade event, each model under ``$defs`` by its name."""
    definitions = _schemas("#/$defs/{model}")
    for subject in CONTRACT_SUBJECTS:
        definitions[subject.model.__name__]["x-nats-subject"] = subject.address
    return {
        "$schema": _SCHEMA_DIALECT,
        "title": "SerenadeEvent",
        "description": "Any event serenade publishes on NATS JetStream (stream SERENADE); each "
        "model's x-nats-subject is its subject.",
        "anyOf": [{"$ref": f"#/$defs/{model.__name__}"} for model in EVENT_MODELS],
        "$defs": definitions,
    }


def render_json(value: Any) -> bytes:
    """Stable JSON bytes: sorted keys, two-space indent, a final newline."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def complete_asyncapi(
    document: Mapping[str, Any],
    *,
    extra_payloads: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``document`` (AsyncAPI 3.0 as FastStream renders it) describing every contract subject.

    - Channels on a contract subject whose handler takes the raw message (FastStream then
      knows no payload: ``EmptyPayload``), or whose subscriber has no handler (a schema with
      only a title), get the subject's event schema; ``extra_payloads`` does the same for
      other addresses (address -> JSON Schema).
    - Every contract subject no channel covers is added as a channel without an operation.
    - Every message names the real correlation header and the headers events carry.
    """
    doc = copy.deepcopy(dict(document))
    components = doc.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    messages: dict[str, Any] = components.setdefault("messages", {})
    channels: dict[str, Any] = doc.setdefault("channels", {})
    schemas.update(_schemas(_COMPONENT_SCHEMAS + "{model}"))

    covered: set[ContractSubject] = set()
    for channel in channels.values():
        address = str(channel.get("address", ""))
        subject = next((s for s in CONTRACT_SUBJECTS if s.covers(address)), None)
        if subject is not None:
            covered.add(subject)
        for reference in channel.get("messages", {}).values():
            message = messages[reference["$ref"].rsplit("/", 1)[-1]]
            message["correlationId"] = dict(_CORRELATION)
            empty = _empty_payload(message.get("payload", {}), schemas)
            if subject is not None:
                message["headers"] = copy.deepcopy(_HEADERS)
                if empty:
                    message["payload"] = {"$ref": _COMPONENT_SCHEMAS + subject.model.__name__}
            elif empty and extra_payloads and address in extra_payloads:
                message["payload"] = copy.deepcopy(extra_payloads[address])

    servers = [{"$ref": f"#/servers/{name}"} for name in sorted(doc.get("servers", {}))]
    for subject in CONTRACT_SUBJECTS:
        if subject not in covered:
            _add_channel(channels, messages, subject, servers)
    for name in [name for name, schema in schemas.items() if _placeholder(schema)]:
        if not any(_references(m, _COMPONENT_SCHEMAS + name) for m in messages.values()):
            del schemas[name]
    _name_messages_after_events(doc)
    return doc


def _empty_payload(payload: Mapping[str, Any], schemas: Mapping[str, Any]) -> bool:
    """Whether FastStream knew no payload: ``EmptyPayload``, or the title-only schema it names
    for a subscriber without a handler (the generator's, whose intake pulls by hand)."""
    reference = payload.get("$ref")
    if not isinstance(reference, str) or not reference.startswith(_COMPONENT_SCHEMAS):
        return False
    schema = schemas.get(reference.removeprefix(_COMPONENT_SCHEMAS))
    return reference == _EMPTY_PAYLOAD or (isinstance(schema, dict) and _placeholder(schema))


def _placeholder(schema: Mapping[str, Any]) -> bool:
    """A schema FastStream made for want of one: ``EmptyPayload`` or a title alone."""
    return schema.get("title") == "EmptyPayload" or set(schema) == {"title"}


def _name_messages_after_events(doc: dict[str, Any]) -> None:
    """Message ids named after the event they carry (``VariantRequested``), not FastStream's
    generic ``Message`` / ``SubscribeMessage``: code generators and viewers show these names.
    A component message is keyed by the event's name; should two channels carry the same event
    with different descriptions, the second is keyed ``<event>:<channel>``."""
    messages: dict[str, Any] = doc["components"]["messages"]
    renamed_components: dict[str, str] = {}
    new_messages: dict[str, Any] = {}
    for old_key, message in messages.items():
        name = _event_name(message) or old_key
        key = name if name not in new_messages else f"{name}:{old_key.rsplit(':', 1)[0]}"
        message["name"] = name
        message["title"] = name
        new_messages[key] = message
        renamed_components[old_key] = key
    doc["components"]["messages"] = dict(sorted(new_messages.items()))

    renamed_in_channel: dict[str, str] = {}
    for channel_key, channel in doc.get("channels", {}).items():
        refs: dict[str, Any] = channel.get("messages", {})
        channel_messages: dict[str, Any] = {}
        for old_id, reference in refs.items():
            component = renamed_components[reference["$ref"].rsplit("/", 1)[-1]]
            new_id = str(new_messages[component]["name"])
            channel_messages[new_id] = {"$ref": f"#/components/messages/{component}"}
            renamed_in_channel[f"#/channels/{channel_key}/messages/{old_id}"] = (
                f"#/channels/{channel_key}/messages/{new_id}"
            )
        if refs:
            channel["messages"] = channel_messages
    for operation in doc.get("operations", {}).values():
        operation["messages"] = [
            {"$ref": renamed_in_channel.get(ref["$ref"], ref["$ref"])}
            for ref in operation.get("messages", [])
        ]


def _event_name(message: Mapping[str, Any]) -> str | None:
    """The name of the event a message carries: its payload schema's name or title."""
    payload = message.get("payload", {})
    reference = payload.get("$ref")
    if isinstance(reference, str) and reference.startswith(_COMPONENT_SCHEMAS):
        return reference.removeprefix(_COMPONENT_SCHEMAS)
    title = payload.get("title")
    return title if isinstance(title, str) else None


def _add_channel(
    channels: dict[str, Any],
    messages: dict[str, Any],
    subject: ContractSubject,
    servers: list[dict[str, str]],
) -> None:
    key = f"contract:{subject.key}"
    message_key = f"{key}:{subject.model.__name__}"
    model = subject.model.__name__
    messages[message_key] = {
        "name": model,
        "summary": (subject.model.__doc__ or model).strip(),
        "contentType": "application/json",
        "correlationId": dict(_CORRELATION),
        "headers": copy.deepcopy(_HEADERS),
        "payload": {"$ref": _COMPONENT_SCHEMAS + model},
    }
    channel: dict[str, Any] = {
        "address": subject.address,
        "description": f"{(subject.model.__doc__ or '').strip()} Published by: "
        f"{subject.published_by}. Part of the contract; this service neither sends nor "
        "receives it.",
        "messages": {model: {"$ref": f"#/components/messages/{message_key}"}},
        "servers": servers,
    }
    if "{service}" in subject.address:
        channel["parameters"] = {
            "service": {"description": "The service that gave up: api, generator, deadletter."}
        }
    else:
        channel["bindings"] = {"nats": {"subject": subject.address, "bindingVersion": "custom"}}
    channels[key] = channel


def _references(value: Any, target: str) -> bool:
    if isinstance(value, dict):
        return value.get("$ref") == target or any(_references(v, target) for v in value.values())
    if isinstance(value, list):
        return any(_references(item, target) for item in value)
    return False
