"""How one delivery ended: the outcome and the facts its log line carries."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

__all__ = ["Outcome", "Report"]


class Outcome(enum.StrEnum):
    """How one delivery ended (the ``outcome`` of its log line)."""

    COMPLETE = "complete"
    RETRY = "retry"  # failed, attempts left: pending again, redelivered after the backoff
    FAILED = "failed"  # the last attempt failed: dead-lettered
    IGNORED = "ignored"  # nothing to do (already final, or a duplicate of work in progress)
    DEAD_LETTERED = "dead_lettered"  # poison: not JSON, not the event, or an unknown variant
    HANDED_BACK = "handed_back"  # the process is stopping: another one takes it at once
    SUPERSEDED = "superseded"  # a newer attempt of the same variant owns it
    REQUEUED = "requeued"  # the infrastructure failed (database, storage): redelivered later


@dataclass(frozen=True, slots=True)
class Report:
    """What happened to one delivery, for its log line."""

    outcome: Outcome
    variant_id: uuid.UUID | None = None
    order_id: uuid.UUID | None = None
    variant_number: int | None = None
    attempt: int | None = None
    error: str | None = None
    correlation_id: str | None = None
