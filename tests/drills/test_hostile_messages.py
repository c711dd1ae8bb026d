"""Drill 6: hostile messages on every subject a service consumes.

``serenade.variants.requested`` (the generator), ``serenade.deadletter.*`` (the dead-letter
service) and the advisory stream it reads get malformed JSON, bytes that are not text, payloads
close to NATS's maximum, wrong types, NUL characters, unknown ids, and old events replayed.
Each is dead-lettered (one failed_jobs row) or ignored as designed, and the consumers keep
serving: an order placed after the barrage completes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from services.launcher import wait_until
from shared.events import (
    STREAM_NAME,
    SUBJECT_VARIANT_REQUESTED,
    OrderCompleted,
    VariantRequested,
)
from shared.stream import ADVISORY_PREFIX
from tests.drills.invariants import check_invariants, settle
from tests.drills.load import LoadDriver
from tests.drills.stack import Stack, StackOptions, running_stack
from tests.drills.streamscan import read_stream

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.drills.config import DrillSettings

DEADLETTER_SUBJECT = "serenade.deadletter.drill"
ADVISORY_SUBJECT = f"{ADVISORY_PREFIX}.MAX_DELIVERIES.{STREAM_NAME}.generator"


@dataclass(frozen=True)
class Hostile:
    """One hostile message and what must become of it."""

    name: str
    subject: str
    data: bytes
    # The error_type of its failed_jobs row; None: ignored as designed (no row).
    error_type: str | None
    # One row however often it is sent: it carries its own event id (or names one message), and
    # a failure is stored once per message.
    once: bool = False

    @property
    def marker(self) -> str:
        return f"hostile-{self.name}"


def _request(variant_id: uuid.UUID, order_id: uuid.UUID, **changes: Any) -> bytes:
    event = VariantRequested(
        variant_id=variant_id, order_id=order_id, variant_number=1, reason="created"
    )
    return orjson.dumps(event.model_dump(mode="json") | changes)


def _envelope(original: Any, **changes: Any) -> bytes:
    envelope = {
        "event_id": str(uuid.uuid4()),
        "type": "deadletter.drill",
        "occurred_at": "2026-01-01T00:00:00Z",
        "original_subject": SUBJECT_VARIANT_REQUESTED,
        "original_event": original,
        "error_type": "DrillError",
        "error": "a hostile envelope",
        "attempts": 1,
        "failed_at": "2026-01-01T00:00:00Z",
        "service": "drill",
    }
    return orjson.dumps(envelope | changes)


def _barrage(max_payload: int, done: VariantRequested, done_seq: int) -> list[Hostile]:
    """Every hostile message, named; each carries its name (its marker) where it can."""
    near_max = max_payload - 4096  # room for the headers
    unknown = uuid.uuid4()

    def mark(name: str) -> str:
        return f"hostile-{name}"

    return [
        # --- to the generator ----------------------------------------------------------------
        Hostile("gen-malformed", SUBJECT_VARIANT_REQUESTED,
                b'{"variant_id": "' + mark("gen-malformed").encode(), "InvalidJSON"),
        Hostile("gen-binary", SUBJECT_VARIANT_REQUESTED,
                b"\xff\xfe\x00\x01" + mark("gen-binary").encode() + bytes(range(256)),
                "InvalidJSON"),
        Hostile("gen-array", SUBJECT_VARIANT_REQUESTED,
                orjson.dumps([mark("gen-array"), 1, None]), "InvalidEvent"),
        Hostile("gen-wrong-types", SUBJECT_VARIANT_REQUESTED,
                orjson.dumps({"variant_id": 12, "order_id": [mark("gen-wrong-types")],
                              "variant_number": "one", "reason": None}), "InvalidEvent"),
        Hostile("gen-nul", SUBJECT_VARIANT_REQUESTED,
                orjson.dumps({"variant_id": "\x00", "note": mark("gen-nul") + "\x00"}),
                "InvalidEvent"),
        Hostile("gen-huge-json", SUBJECT_VARIANT_REQUESTED,
                orjson.dumps({"marker": mark("gen-huge-json"), "pad": "x" * near_max}),
                "InvalidEvent"),
        Hostile("gen-huge-text", SUBJECT_VARIANT_REQUESTED,
                mark("gen-huge-text").encode() + b"z" * near_max, "InvalidJSON"),
        # Not UTF-8: kept as escapes, four characters a byte, in an envelope over the maximum.
        Hostile("gen-huge-binary", SUBJECT_VARIANT_REQUESTED,
                mark("gen-huge-binary").encode() + b"\xff" * near_max, "InvalidJSON"),
        # A key as long as the message: its name would be in the error text.
        Hostile("gen-huge-key", SUBJECT_VARIANT_REQUESTED,
                orjson.dumps({mark("gen-huge-key") + "k" * near_max: 1}), "InvalidEvent"),
        Hostile("gen-huge-correlation", SUBJECT_VARIANT_REQUESTED,
                _request(uuid.uuid4(), uuid.uuid4(),
                         correlation_id=mark("gen-huge-correlation") + "c" * near_max),
                "UnknownVariant", once=True),
        Hostile("gen-unknown-variant", SUBJECT_VARIANT_REQUESTED,
                _request(unknown, uuid.uuid4(), correlation_id=mark("gen-unknown-variant")),
                "UnknownVariant", once=True),
        Hostile("gen-unknown-nul-correlation", SUBJECT_VARIANT_REQUESTED,
                _request(uuid.uuid4(), uuid.uuid4(),
                         correlation_id=mark("gen-unknown-nul-correlation") + "\x00"),
                "UnknownVariant", once=True),
        # An old event replayed: a new message id, so JetStream takes it; the variant is
        # complete, so the generator acknowledges it and changes nothing.
        Hostile("gen-old-event-replayed", SUBJECT_VARIANT_REQUESTED, done.to_json(), None),
        Hostile("gen-old-event-nul-correlation", SUBJECT_VARIANT_REQUESTED,
                _request(done.variant_id, done.order_id, correlation_id="old\x00"), None),
        # --- to the dead-letter service --------------------------------------------------------
        Hostile("dl-malformed", DEADLETTER_SUBJECT,
                b"{" + mark("dl-malformed").encode(), "MalformedEnvelope"),
        Hostile("dl-binary", DEADLETTER_SUBJECT,
                b"\xff\x00" + mark("dl-binary").encode(), "MalformedEnvelope"),
        Hostile("dl-wrong-types", DEADLETTER_SUBJECT,
                orjson.dumps({"marker": mark("dl-wrong-types"), "attempts": "many",
                              "original_event": 5}), "MalformedEnvelope"),
        Hostile("dl-huge", DEADLETTER_SUBJECT,
                _envelope({"marker": mark("dl-huge"), "pad": "y" * near_max}), "DrillError",
                once=True),
        Hostile("dl-nul", DEADLETTER_SUBJECT,
                _envelope({"marker": mark("dl-nul"), "nul": "\x00"}, error="nul\x00"),
                "DrillError", once=True),
        Hostile("dl-unknown-variant", DEADLETTER_SUBJECT,
                _envelope({"marker": mark("dl-unknown-variant"), "variant_id": str(unknown)}),
                "DrillError", once=True),
        # --- to the advisory stream --------------------------------------------------------------
        Hostile("adv-malformed", ADVISORY_SUBJECT,
                b"[" + mark("adv-malformed").encode(), "MalformedAdvisory"),
        Hostile("adv-no-sequence", ADVISORY_SUBJECT,
                orjson.dumps({"marker": mark("adv-no-sequence"), "deliveries": "x"}),
                "MalformedAdvisory"),
        Hostile("adv-huge", ADVISORY_SUBJECT,
                orjson.dumps({"marker": mark("adv-huge"), "pad": "z" * near_max}),
                "MalformedAdvisory"),
        Hostile("adv-sequence-gone", ADVISORY_SUBJECT,
                orjson.dumps({"marker": mark("adv-sequence-gone"), "stream": STREAM_NAME,
                              "consumer": "generator", "stream_seq": 10**9, "deliveries": 13}),
                "MaxDeliveriesExceeded", once=True),
        # A forged "given up" advisory about the request of a complete variant: recorded, and
        # the variant stays complete (and its row is not left open).
        Hostile("adv-forged-complete", ADVISORY_SUBJECT,
                orjson.dumps({"marker": mark("adv-forged-complete"), "stream": STREAM_NAME,
                              "consumer": "drill", "stream_seq": done_seq, "deliveries": 13}),
                "MaxDeliveriesExceeded", once=True),
    ]  # fmt: skip


async def _place(stack: Stack, variants: int) -> dict[uuid.UUID, Any]:
    load = LoadDriver(stack.api_url, users=1, concurrency=1, variant_counts=(variants,))
    await load.run(orders=1)
    assert len(load.accepted) == 1, load.statuses()
    return dict(load.accepted)


async def _all_complete(stack: Stack, order_ids: list[uuid.UUID]) -> bool:
    async with stack.admin() as conn:
        statuses = await conn.fetch(
            "SELECT status::text AS status FROM song_variants WHERE order_id = ANY($1)", order_ids
        )
    return bool(statuses) and all(row["status"] == "complete" for row in statuses)


async def _rows(stack: Stack, hostile: Hostile, done_seq: int) -> list[Any]:
    async with stack.admin() as conn:
        if hostile.name == "adv-forged-complete":
            return list(
                await conn.fetch(
                    "SELECT error_type, resolved_at FROM failed_jobs WHERE message_id = $1",
                    f"advisory:{STREAM_NAME}:{done_seq}:drill",
                )
            )
        return list(
            await conn.fetch(
                "SELECT error_type, resolved_at FROM failed_jobs"
                " WHERE strpos(coalesce(event_text, event_data::text), $1) > 0",
                hostile.marker,
            )
        )


async def test_hostile_messages_are_dead_lettered_or_ignored_and_consumers_keep_serving(
    tmp_path: Path, drills: DrillSettings, report: Callable[[str, dict[str, Any]], str]
) -> None:
    rounds = drills.pick(1, 20)
    async with running_stack(tmp_path, StackOptions(ack_wait=2.0)) as stack:
        accepted = await _place(stack, variants=2)
        order_id = next(iter(accepted))
        await wait_until(lambda: _all_complete(stack, [order_id]), timeout=30, what="first order")
        requests = [
            m for m in await read_stream(stack.js)
            if m.subject == SUBJECT_VARIANT_REQUESTED and m.payload["order_id"] == str(order_id)
        ]  # fmt: skip
        done = VariantRequested.model_validate(requests[0].payload)
        done_seq = requests[0].sequence
        # An exact duplicate (same Nats-Msg-Id) within the window: JetStream drops it.
        duplicate = await stack.js.publish(
            SUBJECT_VARIANT_REQUESTED, done.to_json(), headers={"Nats-Msg-Id": requests[0].msg_id}
        )
        assert duplicate.duplicate

        barrage = _barrage(stack.nc.max_payload, done, done_seq)
        for round_number in range(rounds):
            for hostile in barrage:
                msg_id = f"{hostile.name}-{round_number}-{uuid.uuid4()}"
                await stack.js.publish(
                    hostile.subject, hostile.data, headers={"Nats-Msg-Id": msg_id}
                )
        # The consumers keep serving: an order placed after the barrage completes.
        after = await _place(stack, variants=3)
        accepted |= after
        await wait_until(
            lambda: _all_complete(stack, list(after)), timeout=60, what="the order after"
        )
        # The rows are counted once every message is handled (the order after does not prove
        # that: it may overtake the barrage's last messages, and the dead letters follow).
        settled, _, last = await settle(stack, timeout=60)
        assert settled, f"not settled after 60 s: {last}\n{stack.logs_hint()}"
        outcomes = {hostile.name: await _rows(stack, hostile, done_seq) for hostile in barrage}
        verdict = await check_invariants(stack, accepted, timeout=60)
        alive = all(process.alive() for process in stack.services)
        caught = await _the_checker_notices_damage(stack, accepted)
    wrong = _mishandled(barrage, outcomes, rounds)
    report(
        "hostile-messages",
        {
            "messages": len(barrage) * rounds + 1,
            "kinds": len(barrage) + 1,
            "dead_lettered": sum(len(rows) for rows in outcomes.values()),
            "mishandled": len(wrong),
            **verdict.figures(),
            "settle_s": round(verdict.settle_s, 2),
        },
    )
    assert not wrong, wrong
    assert verdict.ok, f"{verdict.report()}\n{stack.logs_hint()}"
    assert alive, stack.logs_hint()
    assert caught


def _mishandled(
    barrage: list[Hostile], outcomes: dict[str, list[Any]], rounds: int
) -> dict[str, list[tuple[str, bool]]]:
    """The messages whose rows are not what was expected: one row per message sent, of the
    expected error type (none for what is ignored), and no open row about a complete variant."""
    wrong = {}
    for hostile in barrage:
        rows = outcomes[hostile.name]
        sent = 1 if hostile.once else rounds
        expected = [hostile.error_type] * sent if hostile.error_type else []
        found = [row["error_type"] for row in rows]
        still_open = hostile.name == "adv-forged-complete" and any(
            row["resolved_at"] is None for row in rows
        )
        if found != expected or still_open:
            wrong[hostile.name] = [
                (row["error_type"], row["resolved_at"] is not None) for row in rows
            ]
    return wrong


async def _the_checker_notices_damage(stack: Stack, accepted: dict[uuid.UUID, Any]) -> bool:
    """The invariants are not vacuous: a deleted file and a second orders.completed are found."""
    async with stack.admin() as conn:
        row = await conn.fetchrow(
            "SELECT v.storage_path, o.id, o.user_id FROM song_variants v"
            " JOIN orders o ON o.id = v.order_id WHERE v.status = 'complete' LIMIT 1"
        )
    assert row is not None
    (stack.storage_root / row["storage_path"]).unlink()
    again = OrderCompleted(order_id=row["id"], user_id=row["user_id"], status="complete")
    await stack.js.publish(again.subject, again.to_json(), headers=again.headers())
    verdict = await check_invariants(stack, accepted, timeout=10)
    return verdict.lost >= 1 and verdict.duplicated >= 1
