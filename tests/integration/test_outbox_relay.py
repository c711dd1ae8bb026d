"""The outbox relay's wake-up: a commit in any process reaches the leading relay over core NATS
at once, with no NOTIFY trigger serialising PostgreSQL's commits. Its passes: larger while a
backlog waits, each variant's events still in order, small again once it is gone. The relays
here poll only every minute, so a prompt publish can only come from the wake-up."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING

import nats
import orjson
import pytest

from services.launcher import EmbeddedNats
from shared.db import Caller, connect, transaction
from shared.enums import GenerationStatus
from shared.events import STREAM_NAME, DeadLettered, VariantStatusChanged
from shared.outbox import OutboxRelay, enqueue, unpublished_count
from shared.stream import ensure_stream
from tests.helpers import SubjectRecorder, wait_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from nats.aio.client import Client as NatsClient

    from tests.conftest import DatabaseFactory

_POLL = 60.0


@pytest.fixture(scope="module")
def relay_nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedNats(tmp_path_factory.mktemp("relay-nats"))
    yield server.start()
    server.stop()


@pytest.fixture
async def clients(relay_nats_url: str) -> AsyncIterator[list[NatsClient]]:
    """Two connections, as two services have."""
    connections = [await nats.connect(relay_nats_url) for _ in range(2)]
    await ensure_stream(connections[0].jetstream())
    yield connections
    for connection in connections:
        await connection.close()


def _letter() -> DeadLettered:
    return DeadLettered(
        original_subject="serenade.variants.requested",
        original_event=str(uuid.uuid4()),
        error_type="Drill",
        error="wake-up",
        attempts=1,
        service="relay-test",
    )


async def test_a_commit_in_a_standby_process_wakes_the_leader_at_once(
    make_database: DatabaseFactory, clients: list[NatsClient], relay_nats_url: str
) -> None:
    dsn = await make_database()
    leader, standby = (OutboxRelay(dsn, nc, poll_interval=_POLL) for nc in clients)
    recorder = await SubjectRecorder().start(relay_nats_url, "serenade.>")
    await leader.start()
    try:

        async def leading() -> bool:
            return leader.is_leader

        await wait_for(leading, what="the first relay to lead")
        await standby.start()
        letter = _letter()
        conn = await connect(dsn)  # as another service would
        try:
            async with transaction(conn, Caller.service()):
                await enqueue(conn, letter)
        finally:
            await conn.close()
        started = time.monotonic()
        standby.wake()

        async def published() -> bool:
            return str(letter.event_id) in {p["event_id"] for p in recorder.payloads()}

        await wait_for(published, timeout=10, what="the event published")
        assert time.monotonic() - started < _POLL / 10
        assert not standby.is_leader
    finally:
        await standby.stop()
        await leader.stop()
        await recorder.stop()


def _relay_tasks() -> set[asyncio.Task[object]]:
    """Every relay's task in this loop (other tests' apps may have theirs running)."""
    return {task for task in asyncio.all_tasks() if task.get_name() == "outbox-relay"}


def _waiting_for_a_wake(task: asyncio.Task[object]) -> bool:
    """Whether a relay's task is parked in its wait for a wake-up: the first frame of asyncio's
    own in its chain of awaits is that wait (``Event.wait``, or ``wait_for``'s)."""
    awaited: object = task.get_coro()
    while awaited is not None:
        code = getattr(getattr(awaited, "cr_frame", None), "f_code", None)
        if code is not None and "asyncio" in code.co_filename:
            return code.co_name in {"wait", "wait_for"}
        awaited = getattr(awaited, "cr_await", None)
    return False


async def test_a_relay_stopped_as_it_is_woken_stops(
    make_database: DatabaseFactory, clients: list[NatsClient]
) -> None:
    # A wake-up and the cancel of stop() in the same pass of the loop: with asyncio.wait_for
    # (Python 3.11) the wait returned as if woken and swallowed the cancel, and stop() waited
    # for ever (an API's shutdown hung so in the payments tests). Every spacing of the two,
    # from the same pass to a few passes apart, must stop.
    dsn = await make_database()
    for passes in range(8):
        relay = OutboxRelay(dsn, clients[0], poll_interval=_POLL)
        others = _relay_tasks()
        await relay.start()
        [own] = _relay_tasks() - others

        async def leading(relay: OutboxRelay = relay) -> bool:
            return relay.is_leader

        await wait_for(leading, what="the relay to lead")

        # Its first pass (an empty outbox) done, it waits for a wake-up: where the race is.
        async def idle(own: asyncio.Task[object] = own) -> bool:
            return _waiting_for_a_wake(own)

        await wait_for(idle, what="the relay idle")
        relay.wake()
        for _ in range(passes):
            await asyncio.sleep(0)
        async with asyncio.timeout(10):
            await relay.stop()
        assert not relay.is_leader
        assert own.done()


async def test_the_schema_has_no_notify_trigger_on_the_outbox(
    make_database: DatabaseFactory,
) -> None:
    conn = await connect(await make_database())
    try:
        triggers = await conn.fetch(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'outbox'::regclass AND NOT tgisinternal"
        )
    finally:
        await conn.close()
    assert [row["tgname"] for row in triggers] == []


def _backlog(variants: int, changes: int) -> list[VariantStatusChanged]:
    """``changes`` status events for each of ``variants`` variants, interleaved as concurrent
    work writes them: every variant's first change, then every variant's second, ..."""
    ids = [(uuid.uuid4(), uuid.uuid4(), uuid.uuid4()) for _ in range(variants)]
    return [
        VariantStatusChanged(
            variant_id=variant_id,
            order_id=order_id,
            user_id=user_id,
            variant_number=1,
            status=GenerationStatus.GENERATING,
            attempts=attempt,
        )
        for attempt in range(1, changes + 1)
        for variant_id, order_id, user_id in ids
    ]


async def test_a_backlog_goes_out_in_large_passes_in_order_and_a_lone_event_at_once(
    make_database: DatabaseFactory, clients: list[NatsClient], relay_nats_url: str
) -> None:
    dsn = await make_database()
    backlog = _backlog(variants=500, changes=6)  # 3,000 events waiting before the relay starts
    conn = await connect(dsn)
    try:
        async with transaction(conn, Caller.service()):
            await enqueue(conn, *backlog)
    finally:
        await conn.close()
    relay = OutboxRelay(dsn, clients[0], poll_interval=_POLL, batch_size=100)
    recorder = await SubjectRecorder().start(relay_nats_url, "serenade.variants.status")
    await relay.start()
    try:
        mine = {str(event.event_id) for event in backlog}

        async def relayed() -> bool:
            # Seen on NATS, and acked to the relay (which counts a pass once its acks are in).
            seen = {p["event_id"] for p in recorder.payloads()}
            return len(seen & mine) == len(mine) and relay.published_total == len(mine)

        await wait_for(relayed, timeout=60, what="the backlog published")
        # 100 rows a pass would take 30; growing passes take a handful, one up to the cap.
        assert relay.passes_total <= 6
        assert relay.largest_pass > 1000
        seen: dict[str, list[int]] = {}
        for payload in recorder.payloads():
            seen.setdefault(payload["variant_id"], []).append(payload["attempts"])
        assert len(seen) == 500
        assert all(attempts == [1, 2, 3, 4, 5, 6] for attempts in seen.values())

        # Idle now (nothing waits); a lone event goes out on its wake-up, in a pass of its own.
        passes = relay.passes_total
        letter = _letter()
        conn = await connect(dsn)
        try:
            async with transaction(conn, Caller.service()):
                await enqueue(conn, letter)
        finally:
            await conn.close()
        lone = await SubjectRecorder().start(relay_nats_url, "serenade.>")
        try:
            started = time.monotonic()
            relay.wake()

            async def published() -> bool:
                seen = {p["event_id"] for p in lone.payloads()}
                return str(letter.event_id) in seen and relay.published_total == len(mine) + 1

            await wait_for(published, timeout=10, what="the lone event published")
            assert time.monotonic() - started < _POLL / 10
        finally:
            await lone.stop()
        assert relay.passes_total == passes + 1
    finally:
        await relay.stop()
        await recorder.stop()


@pytest.mark.parametrize("listener", [False, True], ids=["refused-503", "no-ack"])
async def test_events_no_stream_takes_are_kept_and_go_out_in_order_once_it_is_back(
    make_database: DatabaseFactory, clients: list[NatsClient], relay_nats_url: str, listener: bool
) -> None:
    """No stream: NATS answers each publish 503 (no responders), or, when a plain subscriber
    listens on the subjects, nobody answers at all (no ack in time)."""
    dsn = await make_database()
    backlog = _backlog(variants=50, changes=6)
    js = clients[0].jetstream()
    await js.delete_stream(STREAM_NAME)
    silent = await SubjectRecorder().start(relay_nats_url, "serenade.>") if listener else None
    conn = await connect(dsn)
    relay = OutboxRelay(dsn, clients[1], poll_interval=0.1, batch_size=100, publish_timeout=0.3)
    try:
        async with transaction(conn, Caller.service()):
            await enqueue(conn, *backlog)
        await relay.start()

        async def tried_twice() -> bool:
            return relay.passes_total >= 2

        await wait_for(tried_twice, what="two passes refused")
        assert relay.published_total == 0
        assert await unpublished_count(conn) == len(backlog)

        if silent is not None:
            await silent.stop()
            silent = None
        await ensure_stream(js)

        async def all_out() -> bool:
            return relay.published_total == len(backlog) and not await unpublished_count(conn)

        await wait_for(all_out, timeout=30, what="the backlog published")
        info = await js.stream_info(STREAM_NAME)
        assert info.state.messages == len(backlog)  # each once
        stored = [
            orjson.loads((await js.get_msg(STREAM_NAME, seq)).data or b"{}")
            for seq in range(1, len(backlog) + 1)
        ]
        assert {p["event_id"] for p in stored} == {str(e.event_id) for e in backlog}
        seen: dict[str, list[int]] = {}
        for payload in stored:
            seen.setdefault(payload["variant_id"], []).append(payload["attempts"])
        assert all(attempts == [1, 2, 3, 4, 5, 6] for attempts in seen.values())
    finally:
        await relay.stop()
        await conn.close()
        if silent is not None:
            await silent.stop()
        await ensure_stream(js)
