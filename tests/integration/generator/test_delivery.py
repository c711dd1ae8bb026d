"""How the generator uses its JetStream consumer: no over-fetching, work kept alive past the ack
wait, one dead letter per message however often it comes, the consumer kept equal to the code."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from services.generator.consumer import DURABLE, consumer_config
from services.generator.delivery import Position
from services.generator.pipeline import Outcome, Pipeline, Policy, process_request
from services.generator.providers import ChaosProvider, InstantProvider, ProviderUnavailable
from shared.db import Caller, transaction
from shared.events import STREAM_NAME, SUBJECT_VARIANT_REQUESTED, VariantRequested
from shared.storage import audio_path, storage_from_url
from shared.stream import ensure_consumer
from tests.helpers import wait_for

from .support import (
    SeededOrder,
    all_final,
    request_all,
    running_generator,
    seed_order,
    variants_of,
)

if TYPE_CHECKING:
    from pathlib import Path

    from services.generator.providers.base import GeneratedSong, SongRequest

    from .conftest import GeneratorEnv


async def test_a_process_holds_no_more_requests_than_its_concurrency(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    settings = env.with_settings(generator_concurrency=2, provider_delay_ms=400)
    order = await seed_order(env.pool, variants=5)
    held: list[int] = []
    async with running_generator(settings):
        await request_all(env.js, order)

        async def sample() -> object:
            info = await env.js.consumer_info(STREAM_NAME, DURABLE)
            held.append(info.num_ack_pending or 0)
            return await all_final(env.pool, order.order_id)

        rows = await wait_for(sample, what="5 variants final")
    info = await env.js.consumer_info(STREAM_NAME, DURABLE)

    assert all(row.status == "complete" for row in rows)
    assert max(held) == 2  # two in work, none fetched ahead
    assert info.num_redelivered == 0


async def test_a_generation_longer_than_the_ack_wait_is_kept_alive_not_redelivered(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    # ack wait 2 s, heartbeat every 2/3 s, the provider takes 3.5 s.
    settings = env.with_settings(generator_ack_wait=2.0, provider_delay_ms=3500)
    order = await seed_order(env.pool, variants=1)
    async with running_generator(settings):
        await request_all(env.js, order)
        [row] = await wait_for(lambda: all_final(env.pool, order.order_id), what="final variant")
        info = await env.js.consumer_info(STREAM_NAME, DURABLE)

    assert row.status == "complete"
    assert row.attempts == 1
    assert info.num_redelivered == 0


@dataclass
class _FakeDelivery:
    """A delivery that only records how it was settled."""

    data: bytes
    position: Position | None
    subject: str = SUBJECT_VARIANT_REQUESTED
    correlation_id: str | None = None
    settled: list[str] = field(default_factory=list)

    async def ack(self) -> None:
        self.settled.append("ack")

    async def nak(self, delay: float | None = None) -> None:
        self.settled.append(f"nak {delay}")

    async def in_progress(self) -> None:
        self.settled.append("in_progress")


def _pipeline(env: GeneratorEnv) -> Pipeline:
    return Pipeline(
        env.pool,
        storage_from_url(env.settings.resolved_storage_url),
        InstantProvider(),
        Policy.from_settings(env.settings),
        announce=lambda: None,
    )


async def test_a_redelivered_poison_message_makes_no_second_dead_letter(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    pipe = _pipeline(env)
    stored_at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    reports = []
    for delivered in (1, 2):  # the first was processed, then the ack was lost
        delivery = _FakeDelivery(b"not json", Position(STREAM_NAME, 42, stored_at, delivered))
        reports.append(await process_request(delivery, pipe, abandon=asyncio.Event()))
        assert delivery.settled == ["ack"]
    async with transaction(env.pool, Caller.service()) as conn:
        letters = await conn.fetch(
            "SELECT payload FROM outbox WHERE subject LIKE 'serenade.deadl%'"
        )

    assert [report.outcome for report in reports] == [Outcome.DEAD_LETTERED] * 2
    assert len(letters) == 1
    assert letters[0]["payload"]["original_event"] == "not json"


async def _mark_generating(env: GeneratorEnv, variant_id: uuid.UUID, attempts: int) -> None:
    """As a process that started an attempt and then died leaves it."""
    async with transaction(env.pool, Caller.service()) as conn:
        await conn.execute(
            "UPDATE song_variants SET status = 'generating', attempts = $2 WHERE id = $1",
            variant_id,
            attempts,
        )


def _request(order: SeededOrder, delivered: int) -> _FakeDelivery:
    event = VariantRequested(
        variant_id=order.variant_ids[0], order_id=order.order_id, variant_number=1,
        reason="created",
    )  # fmt: skip
    return _FakeDelivery(event.to_json(), Position(STREAM_NAME, 1, None, delivered))


async def test_a_second_request_for_a_variant_in_progress_is_ignored(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    order = await seed_order(env.pool, variants=1)
    await _mark_generating(env, order.variant_ids[0], attempts=1)
    duplicate = _request(order, delivered=1)

    report = await process_request(duplicate, _pipeline(env), abandon=asyncio.Event())

    [row] = await variants_of(env.pool, order.order_id)
    assert report.outcome is Outcome.IGNORED
    assert duplicate.settled == ["ack"]
    assert (row.status, row.attempts) == ("generating", 1)


async def test_a_redelivery_takes_over_a_variant_left_generating_by_a_dead_process(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    order = await seed_order(env.pool, variants=1)
    await _mark_generating(env, order.variant_ids[0], attempts=1)
    redelivery = _request(order, delivered=2)

    report = await process_request(redelivery, _pipeline(env), abandon=asyncio.Event())

    [row] = await variants_of(env.pool, order.order_id)
    assert report.outcome is Outcome.COMPLETE
    assert redelivery.settled == ["ack"]
    assert (row.status, row.attempts) == ("complete", 2)


async def test_a_process_lost_during_the_last_attempt_fails_the_variant_and_keeps_no_audio(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    order = await seed_order(env.pool, variants=1)
    await _mark_generating(env, order.variant_ids[0], attempts=env.settings.max_attempts)
    left = [_leave_audio(env, order, "mp3"), _leave_audio(env, order, "wav")]
    redelivery = _request(order, delivered=4)

    report = await process_request(redelivery, _pipeline(env), abandon=asyncio.Event())

    [row] = await variants_of(env.pool, order.order_id)
    async with transaction(env.pool, Caller.service()) as conn:
        letters = await conn.fetch(
            "SELECT payload FROM outbox WHERE subject = 'serenade.deadletter.generator'"
        )
    assert report.outcome is Outcome.FAILED
    assert redelivery.settled == ["ack"]
    assert (row.status, row.attempts) == ("failed", env.settings.max_attempts)
    assert row.error == "the generator was lost during the last attempt"
    assert [letter["payload"]["error_type"] for letter in letters] == ["GeneratorLost"]
    assert [path.exists() for path in left] == [False, False]


async def test_an_abandoned_attempt_goes_back_to_pending_uncounted_and_is_redelivered_at_once(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    order = await seed_order(env.pool, variants=1)
    slow = replace(_pipeline(env), provider=ChaosProvider(InstantProvider(), delay_seconds=30))
    abandon = asyncio.Event()
    delivery = _request(order, delivered=1)
    asyncio.get_running_loop().call_later(0.3, abandon.set)

    report = await process_request(delivery, slow, abandon=abandon)

    [row] = await variants_of(env.pool, order.order_id)
    async with transaction(env.pool, Caller.service()) as conn:
        announced = await conn.fetch(
            "SELECT payload FROM outbox WHERE subject = 'serenade.variants.status' ORDER BY id"
        )
    assert report.outcome is Outcome.HANDED_BACK
    assert delivery.settled == ["nak None"]  # no delay: another process takes it now
    assert (row.status, row.attempts) == ("pending", 0)
    assert [(a["payload"]["status"], a["payload"]["attempts"]) for a in announced] == [
        ("generating", 1),
        ("pending", 0),
    ]


async def test_the_consumer_is_updated_when_its_settings_change(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    first = consumer_config(env.with_settings(generator_ack_wait=30.0, max_attempts=3))
    changed = consumer_config(env.with_settings(generator_ack_wait=5.0, max_attempts=4))

    assert await ensure_consumer(env.js, STREAM_NAME, first) == "created"
    assert await ensure_consumer(env.js, STREAM_NAME, first) == "unchanged"
    assert await ensure_consumer(env.js, STREAM_NAME, changed) == "updated"
    info = await env.js.consumer_info(STREAM_NAME, DURABLE)
    assert info.config.ack_wait == 5.0
    assert info.config.max_deliver == changed.max_deliver
    assert await ensure_consumer(env.js, STREAM_NAME, changed) == "unchanged"


async def test_a_consumer_that_cannot_be_updated_is_recreated_after_its_ack_floor(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    for number in (1, 2):
        await env.js.publish(SUBJECT_VARIANT_REQUESTED, f"request {number}".encode())
    # Someone made the durable with an ack policy the server cannot change in place.
    await env.js.add_consumer(
        STREAM_NAME,
        ConsumerConfig(
            name=DURABLE,
            durable_name=DURABLE,
            filter_subject=SUBJECT_VARIANT_REQUESTED,
            ack_policy=AckPolicy.ALL,
        ),
    )
    old = await env.js.pull_subscribe_bind(DURABLE, STREAM_NAME)
    [first] = await old.fetch(1, timeout=5)
    await first.ack_sync()
    await old.unsubscribe()

    assert await ensure_consumer(env.js, STREAM_NAME, consumer_config(env.settings)) == "recreated"
    info = await env.js.consumer_info(STREAM_NAME, DURABLE)
    assert info.config.ack_policy == AckPolicy.EXPLICIT
    fresh = await env.js.pull_subscribe_bind(DURABLE, STREAM_NAME)
    [message] = await fresh.fetch(1, timeout=5)
    assert message.data == b"request 2"  # the acknowledged one is not delivered again
    await message.ack_sync()
    await fresh.unsubscribe()


async def test_starting_with_a_broken_provider_fails_before_connecting(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    settings = env.with_settings(provider="tests.integration.generator.providers:NotAProvider")
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="not a SongProvider"):
        async with running_generator(settings):
            raise AssertionError("the generator started with a broken provider")
    assert time.monotonic() - started < 5


def _leave_audio(env: GeneratorEnv, order: SeededOrder, extension: str = "mp3") -> Path:
    """As an attempt that stored its audio and died before it could commit leaves it."""
    path = env.storage_root / audio_path(order.user_id, order.order_id, 1, extension)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"audio of a lost attempt")
    return path


async def test_a_variant_whose_last_attempt_fails_keeps_no_audio_of_an_earlier_lost_one(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    order = await seed_order(env.pool, variants=1)
    await _mark_generating(env, order.variant_ids[0], attempts=env.settings.max_attempts - 1)
    left = _leave_audio(env, order)
    failing = replace(_pipeline(env), provider=ChaosProvider(InstantProvider(), failure_rate=1.0))
    delivery = _request(order, delivered=4)

    report = await process_request(delivery, failing, abandon=asyncio.Event())

    [row] = await variants_of(env.pool, order.order_id)
    assert report.outcome is Outcome.FAILED
    assert (row.status, delivery.settled) == ("failed", ["ack"])
    assert not left.exists()


async def test_an_attempt_that_outlived_its_variants_failure_removes_the_audio_it_stored(
    generator_env: GeneratorEnv,
) -> None:
    """A paused generator resumes after its variant was failed for lost: the audio it stores
    then belongs to nothing, and it is removed; a complete variant's file is never touched."""
    env = generator_env
    failed, completed = (
        await seed_order(env.pool, variants=1),
        await seed_order(env.pool, variants=1),
    )
    for order in (failed, completed):
        await _mark_generating(env, order.variant_ids[0], attempts=0)
    outcomes = {}
    for order, final in ((failed, "failed"), (completed, "complete")):
        gate = asyncio.Event()
        slow = replace(_pipeline(env), provider=_GatedProvider(gate))
        work = asyncio.create_task(
            process_request(_request(order, delivered=2), slow, abandon=asyncio.Event())
        )
        await wait_for(functools.partial(_attempts_are, env, order, 1), what="the attempt started")
        # Meanwhile the variant became final by other hands (a takeover, the dead-letter service).
        async with transaction(env.pool, Caller.service()) as conn:
            await conn.execute(
                "UPDATE song_variants SET status = $2::generation_status, attempts = 2,"
                " storage_path = CASE WHEN $2 = 'complete' THEN $3 END WHERE id = $1",
                order.variant_ids[0], final,
                audio_path(order.user_id, order.order_id, 1, "wav"),
            )  # fmt: skip
        gate.set()
        outcomes[final] = (await work).outcome

    assert outcomes == {"failed": Outcome.SUPERSEDED, "complete": Outcome.SUPERSEDED}
    # The instant provider's audio is WAV.
    assert not (env.storage_root / audio_path(failed.user_id, failed.order_id, 1, "wav")).exists()
    assert (env.storage_root / audio_path(completed.user_id, completed.order_id, 1, "wav")).exists()


async def _attempts_are(env: GeneratorEnv, order: SeededOrder, attempts: int) -> bool:
    [row] = await variants_of(env.pool, order.order_id)
    return row.attempts == attempts


class _GatedProvider:
    """The instant provider, once ``gate`` is set."""

    def __init__(self, gate: asyncio.Event) -> None:
        self._gate = gate

    async def generate(self, request: SongRequest) -> GeneratedSong:
        await self._gate.wait()
        return await InstantProvider().generate(request)


class _RudeProvider:
    """A third-party provider whose error is a NUL and a novel."""

    async def generate(self, request: SongRequest) -> GeneratedSong:  # noqa: ARG002
        raise RuntimeError("bad\x00gateway " + "x" * 50_000)


async def test_a_providers_huge_error_with_nul_still_fails_the_variant_with_a_bounded_error(
    generator_env: GeneratorEnv,
) -> None:
    env = generator_env
    order = await seed_order(env.pool, variants=1)
    await _mark_generating(env, order.variant_ids[0], attempts=env.settings.max_attempts - 1)
    delivery = _request(order, delivered=3)

    report = await process_request(
        delivery, replace(_pipeline(env), provider=_RudeProvider()), abandon=asyncio.Event()
    )

    [row] = await variants_of(env.pool, order.order_id)
    assert (report.outcome, row.status, delivery.settled) == (Outcome.FAILED, "failed", ["ack"])
    assert row.error is not None
    assert row.error.startswith("bad\\u0000gateway xxx")
    assert len(row.error) <= 2010
