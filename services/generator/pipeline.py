"""The variant pipeline: one delivery of ``serenade.variants.requested``, from its bytes to its
settlement.

Every step is a conditional update in one short service_role transaction that writes the events
it causes to the outbox in that same transaction; the message is settled only after the commit,
so a crash anywhere leaves either the old state and an unsettled message (redelivered) or the new
state and a message whose redelivery finds nothing to do.

    claim     pending (or generating, on a redelivery: its holder was lost) -> generating
    generate  the provider, under a timeout, the message kept alive
    store     the audio at {user_id}/{order_id}/variant-{n}.{ext}
    settle    complete | back to pending, nak with backoff | failed + dead letter, ack
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared import lifecycle
from shared.db import Caller
from shared.enums import GenerationStatus
from shared.logs import log_context
from shared.storable import json_or_text
from shared.storage import audio_path, discard_audio
from shared.unit_of_work import enqueue, unit_of_work

from .attempt import Abandoned, check_song, run_provider
from .deadletters import envelope_for, error_text, write_once
from .groups import ClaimRequest
from .parsing import Poison, parse_request
from .providers.base import SongRequest
from .reports import Outcome, Report

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    import asyncpg

    from shared.events import Event, VariantRequested
    from shared.settings import Settings
    from shared.storage import Storage

    from .delivery import Delivery
    from .groups import PipelineGroups
    from .providers.base import SongProvider

__all__ = ["Outcome", "Pipeline", "Policy", "Report", "process_request"]

LOST_DURING_LAST_ATTEMPT = "the generator was lost during the last attempt"


@dataclass(frozen=True, slots=True)
class Policy:
    """The pipeline's numbers, from the settings."""

    max_attempts: int
    retry_backoff: tuple[float, ...]
    provider_timeout: float
    heartbeat: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            max_attempts=settings.max_attempts,
            retry_backoff=settings.retry_backoff,
            provider_timeout=settings.generator_provider_timeout,
            heartbeat=settings.generator_ack_wait / 3,
        )

    def backoff_for(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based); the last value repeats."""
        index = min(max(attempt, 1), len(self.retry_backoff)) - 1
        return self.retry_backoff[index]


@dataclass(frozen=True, slots=True)
class Pipeline:
    """The pipeline's dependencies. ``announce`` wakes the outbox relay: every transaction
    here is a unit of work that calls it once it committed events."""

    pool: asyncpg.Pool
    storage: Storage
    provider: SongProvider
    policy: Policy
    announce: Callable[[], None]
    # Claims and completions in group commits; None: each in a transaction of its own.
    groups: PipelineGroups | None = None


@dataclass(frozen=True, slots=True)
class _Claim:
    request: VariantRequested
    found: lifecycle.VariantWithOrder
    attempt: int
    correlation_id: str | None

    def report(self, outcome: Outcome, error: str | None = None) -> Report:
        variant = self.found.variant
        return Report(
            outcome, variant.id, variant.order_id, variant.variant_number, self.attempt, error,
            self.correlation_id,
        )  # fmt: skip


async def process_request(delivery: Delivery, pipe: Pipeline, *, abandon: asyncio.Event) -> Report:
    """Take one delivery through the pipeline and settle it. Infrastructure errors (database,
    connection) propagate unsettled: the caller requeues the message."""
    parsed = parse_request(delivery.data)
    if isinstance(parsed, Poison):
        return await _dead_letter_poison(delivery, pipe, parsed)
    correlation_id = parsed.correlation_id or delivery.correlation_id
    with log_context(
        variant_id=str(parsed.variant_id), order_id=str(parsed.order_id),
        correlation_id=correlation_id,
    ):  # fmt: skip
        return await _generate(delivery, pipe, parsed, correlation_id, abandon)


async def _generate(
    delivery: Delivery,
    pipe: Pipeline,
    request: VariantRequested,
    correlation_id: str | None,
    abandon: asyncio.Event,
) -> Report:
    claim = await _claim(delivery, pipe, request, correlation_id)
    if isinstance(claim, Report):
        await delivery.ack()
        return claim
    variant, order = claim.found.variant, claim.found.order
    try:
        song = check_song(
            await run_provider(
                pipe.provider.generate(_song_request(claim)),
                timeout=pipe.policy.provider_timeout,
                keep_alive=delivery.in_progress,
                heartbeat=pipe.policy.heartbeat,
                abandon=abandon,
            )
        )
        key = audio_path(order.user_id, order.id, variant.variant_number, song.extension)
        await pipe.storage.put(key, song.audio, song.content_type)
    except Abandoned:
        return await _hand_back(delivery, pipe, claim)
    except Exception as error:  # noqa: BLE001 - any provider or storage failure fails the attempt
        return await _attempt_failed(delivery, pipe, claim, error)
    events, failed_meanwhile = await _complete(
        pipe,
        lifecycle.Completion(
            variant.id, order.user_id, attempt=claim.attempt, storage_path=key, title=song.title,
            lyrics=song.lyrics, duration_seconds=song.duration_seconds,
            correlation_id=claim.correlation_id,
        ),
    )  # fmt: skip
    if failed_meanwhile:
        await _discard_audio(pipe, claim.found)
    await delivery.ack()
    return claim.report(Outcome.COMPLETE if events else Outcome.SUPERSEDED)


async def _complete(pipe: Pipeline, done: lifecycle.Completion) -> tuple[list[Event], bool]:
    """The variant complete (its events), in a group commit or, when its group failed, alone;
    and whether its variant had failed meanwhile (an attempt superseded while it ran)."""
    if pipe.groups is not None:
        grouped = await pipe.groups.completions.submit(done)
        if grouped is not None:
            return grouped.events, grouped.failed_meanwhile
    async with unit_of_work(pipe.pool, Caller.service(), wake=pipe.announce) as uow:
        conn = uow.conn
        events = await lifecycle.complete_variant(
            conn, done.variant_id, done.user_id, attempt=done.attempt,
            storage_path=done.storage_path, title=done.title, lyrics=done.lyrics,
            duration_seconds=done.duration_seconds, correlation_id=done.correlation_id,
        )  # fmt: skip
        await uow.enqueue(*events)
        # Superseded: this attempt was taken for lost while it ran. If the variant failed
        # meanwhile, the file just stored belongs to nothing.
        failed_meanwhile = not events and await lifecycle.is_failed(conn, done.variant_id)
    return events, failed_meanwhile


async def _discard_audio(pipe: Pipeline, found: lifecycle.VariantWithOrder) -> None:
    """After a variant failed: delete audio a lost attempt may have stored."""
    variant, order = found.variant, found.order
    await discard_audio(pipe.storage, order.user_id, order.id, variant.variant_number)


def _song_request(claim: _Claim) -> SongRequest:
    order = claim.found.order
    return SongRequest(
        order_id=order.id,
        user_id=order.user_id,
        recipient_name=order.recipient_name,
        occasion=order.occasion.value,
        genre=order.genre.value,
        mood=order.mood.value,
        story=order.story,
        occasion_date=order.occasion_date,
        variant_number=claim.found.variant.variant_number,
    )


async def _dead_letter_poison(delivery: Delivery, pipe: Pipeline, poison: Poison) -> Report:
    envelope = envelope_for(
        delivery, event_id=None, original=poison.original, error_type=poison.error_type,
        error=poison.error, correlation_id=delivery.correlation_id,
    )  # fmt: skip
    async with unit_of_work(pipe.pool, Caller.service(), wake=pipe.announce) as uow:
        await write_once(uow.conn, envelope)
    await delivery.ack()
    return Report(Outcome.DEAD_LETTERED, error=poison.error, correlation_id=delivery.correlation_id)


async def _claim(
    delivery: Delivery, pipe: Pipeline, request: VariantRequested, correlation_id: str | None
) -> _Claim | Report:
    """Start an attempt, or say why there is none (and settle nothing: the caller acks).
    A plainly claimable variant is claimed in a group commit; any other case, or a failed
    group, is decided here alone, as before."""
    redelivered = delivery.position is not None and delivery.position.delivered > 1
    if pipe.groups is not None:
        started = await pipe.groups.claims.submit(
            ClaimRequest(request.variant_id, redelivered, correlation_id)
        )
        if started is not None:
            return _Claim(request, started.found, started.attempt, correlation_id)
    report: _Claim | Report
    async with unit_of_work(pipe.pool, Caller.service(), wake=pipe.announce) as uow:
        conn = uow.conn
        found = await lifecycle.load_variant(conn, request.variant_id, lock=True)
        if found is None:
            error = f"variant {request.variant_id} does not exist"
            await write_once(
                conn,
                envelope_for(
                    delivery, event_id=request.event_id, original=json_or_text(delivery.data),
                    error_type="UnknownVariant", error=error, correlation_id=correlation_id,
                ),
            )  # fmt: skip
            report = Report(
                Outcome.DEAD_LETTERED, request.variant_id, request.order_id,
                request.variant_number, error=error, correlation_id=correlation_id,
            )  # fmt: skip
        else:
            report = await _start(
                conn, delivery, pipe, request, found,
                correlation_id=correlation_id, redelivered=redelivered,
            )  # fmt: skip
    if found is not None and isinstance(report, Report) and report.outcome is Outcome.FAILED:
        await _discard_audio(pipe, found)
    return report


async def _start(
    conn: asyncpg.Connection,
    delivery: Delivery,
    pipe: Pipeline,
    request: VariantRequested,
    found: lifecycle.VariantWithOrder,
    *,
    correlation_id: str | None,
    redelivered: bool,
) -> _Claim | Report:
    variant, order = found.variant, found.order

    def skip(outcome: Outcome, why: str) -> Report:
        return Report(
            outcome, variant.id, variant.order_id, variant.variant_number, variant.attempts, why,
            correlation_id,
        )  # fmt: skip

    if variant.status.is_final:
        return skip(Outcome.IGNORED, f"the variant is already {variant.status}")
    if variant.status is GenerationStatus.GENERATING:
        if not redelivered:
            # A second request for a variant whose own request is being worked on: that
            # request's message is still held (and redelivered if its holder dies).
            return skip(Outcome.IGNORED, "a generation of this variant is in progress")
        if variant.attempts >= pipe.policy.max_attempts:
            events: list[Event] = await lifecycle.fail_variant(
                conn, variant.id, order.user_id, error=LOST_DURING_LAST_ATTEMPT,
                attempt=variant.attempts, correlation_id=correlation_id,
            )  # fmt: skip
            if events:
                await write_once(
                    conn,
                    envelope_for(
                        delivery, event_id=request.event_id,
                        original=json_or_text(delivery.data), error_type="GeneratorLost",
                        error=LOST_DURING_LAST_ATTEMPT, attempts=variant.attempts,
                        correlation_id=correlation_id,
                    ),
                )  # fmt: skip
                await enqueue(conn, *events)
            return skip(Outcome.FAILED, LOST_DURING_LAST_ATTEMPT)
    started = await lifecycle.start_attempt(
        conn, variant.id, order.user_id, correlation_id=correlation_id
    )
    if started is None:
        return skip(Outcome.IGNORED, "the variant became final meanwhile")
    attempt, status_event = started
    await enqueue(conn, status_event)
    return _Claim(request, found, attempt, correlation_id)


async def _attempt_failed(
    delivery: Delivery, pipe: Pipeline, claim: _Claim, error: Exception
) -> Report:
    # A provider's words, bounded and without NUL: they go to a text column and the outbox.
    text = error_text(error)
    variant, order = claim.found.variant, claim.found.order
    last = claim.attempt >= pipe.policy.max_attempts
    async with unit_of_work(pipe.pool, Caller.service(), wake=pipe.announce) as uow:
        conn = uow.conn
        if not last:
            event = await lifecycle.release_for_retry(
                conn, variant.id, order.user_id, attempt=claim.attempt, error=text,
                correlation_id=claim.correlation_id,
            )  # fmt: skip
            events: list[Event] = [] if event is None else [event]
        else:
            events = await lifecycle.fail_variant(
                conn, variant.id, order.user_id, error=text, attempt=claim.attempt,
                correlation_id=claim.correlation_id,
            )  # fmt: skip
            if events:
                await write_once(
                    conn,
                    envelope_for(
                        delivery, event_id=claim.request.event_id,
                        original=json_or_text(delivery.data), error_type=type(error).__name__,
                        error=text, attempts=claim.attempt, correlation_id=claim.correlation_id,
                    ),
                )  # fmt: skip
        await uow.enqueue(*events)
    if not events:
        await delivery.ack()
        return claim.report(Outcome.SUPERSEDED, text)
    if last:
        await _discard_audio(pipe, claim.found)
        await delivery.ack()
        return claim.report(Outcome.FAILED, text)
    await delivery.nak(delay=pipe.policy.backoff_for(claim.attempt))
    return claim.report(Outcome.RETRY, text)


async def _hand_back(delivery: Delivery, pipe: Pipeline, claim: _Claim) -> Report:
    """Back to pending, not counting the attempt, and redelivered at once (to another process:
    this one has stopped fetching). Without the database the variant stays generating, which
    the redelivery takes over all the same."""
    variant, order = claim.found.variant, claim.found.order
    error: str | None = None
    try:
        async with unit_of_work(pipe.pool, Caller.service(), wake=pipe.announce) as uow:
            conn = uow.conn
            event = await lifecycle.hand_back(
                conn, variant.id, order.user_id, attempt=claim.attempt,
                correlation_id=claim.correlation_id,
            )  # fmt: skip
            if event is not None:
                await uow.enqueue(event)
    except Exception as failure:  # noqa: BLE001 - the nak below is what matters now
        error = f"left generating: {failure!r}"
    await delivery.nak()
    return claim.report(Outcome.HANDED_BACK, error)
