"""The payments worker: every API process runs one; each round expires awaiting payments past
their time, opens the checkouts the provider could not open at order time, and asks for the
refunds that are due.

Its state is in the payments table, so it survives restarts. Several API processes share the
work without doing any of it twice: expiry takes rows ``FOR UPDATE SKIP LOCKED`` and changes
only ``awaiting`` ones; a refund is claimed by moving its ``next_refund_at`` ahead in the same
statement that picks it; a checkout session is made with the payment id as the provider's
idempotency key, so two processes opening one get the same session.
"""

import asyncio
import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Self

from services.api.common.billing import CHECKOUT_WAIT_SECONDS, Billing, open_checkout
from services.api.common.database import Database
from services.api.payments.webhook import apply_event
from shared.background import BackgroundTasks
from shared.db import Caller
from shared.events import Event
from shared.outbox import enqueue
from shared.payment_rules import REFUND_SUBJECT
from shared.payments.ledger import dead_letter, lapse
from shared.payments.providers import ProviderError
from shared.rows import PaymentRow, StrayChargeRow

__all__ = ["PaymentsWorker", "Round"]

BATCH = 100
# A claimed refund is not picked again for this long (the provider's call is under way).
REFUND_LEASE = dt.timedelta(seconds=60)
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Round:
    expired: int
    checkouts_opened: int
    refunds_requested: int
    refunds_dead_lettered: int


@dataclass(frozen=True, slots=True)
class _Refund:
    """One refund the worker asks for: a payment's own, or a second charge's for a payment
    already paid. ``table`` is one of two constants, never input."""

    table: str
    id: uuid.UUID
    payment_id: uuid.UUID
    payment_intent: str | None
    amount: int
    currency: str
    attempts: int
    stray_charge_id: uuid.UUID | None
    # What its dead letter names besides the payment: the order, or the second charge.
    names: tuple[str, uuid.UUID]

    @property
    def dead_letter_event(self) -> dict[str, object]:
        return {
            "payment_id": str(self.payment_id),
            self.names[0]: str(self.names[1]),
            "amount": self.amount,
            "currency": self.currency,
            "payment_intent": self.payment_intent,
        }

    @classmethod
    def of_payment(cls, row: dict[str, object]) -> Self:
        payment = PaymentRow.model_validate(row)
        return cls(
            table="payments",
            id=payment.id,
            payment_id=payment.id,
            payment_intent=payment.provider_payment_intent,
            amount=payment.amount,
            currency=payment.currency,
            attempts=payment.refund_attempts,
            stray_charge_id=None,
            names=("order_id", payment.order_id),
        )

    @classmethod
    def of_stray(cls, row: dict[str, object]) -> Self:
        stray = StrayChargeRow.model_validate(row)
        return cls(
            table="stray_charges",
            id=stray.id,
            payment_id=stray.payment_id,
            payment_intent=stray.payment_intent,
            amount=stray.amount,
            currency=stray.currency,
            attempts=stray.refund_attempts,
            stray_charge_id=stray.id,
            names=("stray_charge_id", stray.id),
        )


class PaymentsWorker:
    def __init__(
        self, db: Database, billing: Billing, *, interval: float, refund_max_attempts: int
    ) -> None:
        self._db = db
        self._billing = billing
        self._interval = interval
        self._max_attempts = refund_max_attempts
        self._background = BackgroundTasks()

    async def start(self) -> None:
        if self._billing.on and not self._background.started:
            self._background.start(self._run(), name="payments-worker")

    async def stop(self) -> None:
        await self._background.stop()

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # noqa: BLE001 - PostgreSQL away: the next round tries again
                _log.warning("payments round failed; trying again", exc_info=True)
            await asyncio.sleep(self._interval)

    async def run_once(self) -> Round:
        """One round of each duty (tests call it directly)."""
        expired = await self.expire_due()
        opened = await self.open_missing_checkouts()
        requested, dead = await self.settle_due_refunds()
        return Round(expired, opened, requested, dead)

    async def expire_due(self) -> int:
        events: list[Event] = []
        async with self._db.run_as(Caller.service()) as conn:
            rows = await conn.fetch(
                "SELECT * FROM payments WHERE status = 'awaiting' AND expires_at <= now()"
                " ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED",
                BATCH,
            )
            for row in rows:
                events += await lapse(conn, PaymentRow.model_validate(dict(row)), "expired")
            await enqueue(conn, *events)
        return len(rows)

    async def open_missing_checkouts(self) -> int:
        async with self._db.run_as(Caller.service()) as conn:
            # Backs off by the attempts made: a provider that is down is not hammered. A payment
            # is left to the request that made it until that request's own attempt has had its
            # time: picked sooner, the same session would be asked for twice (harmless with the
            # idempotency key, but a second call to the provider for nothing).
            ids = await conn.fetch(
                "SELECT id FROM payments WHERE status = 'awaiting' AND checkout_url IS NULL"
                " AND expires_at > now()"
                " AND created_at <= now() - make_interval(secs => $2)"
                " AND updated_at <= now() - make_interval(secs => least(session_attempts, 60))"
                " ORDER BY created_at LIMIT $1",
                BATCH,
                CHECKOUT_WAIT_SECONDS + 1.0,
            )
        opened = 0
        for row in ids:
            if await open_checkout(self._db, self._billing, row["id"]) is not None:
                opened += 1
        return opened

    async def settle_due_refunds(self) -> tuple[int, int]:
        """Asks for the refunds that are due: payments' own, then second charges for payments
        already paid (``stray_charges``, whose payment itself is not touched)."""
        requested = dead = 0
        for table, refund_of in (
            ("payments", _Refund.of_payment),
            ("stray_charges", _Refund.of_stray),
        ):
            async with self._db.run_as(Caller.service()) as conn:
                # Claimed by moving next_refund_at ahead in the statement that picks them, so
                # no other API process asks for the same refund meanwhile.
                due = await conn.fetch(
                    f"UPDATE {table} SET next_refund_at = now() + $2::interval,"
                    " refund_attempts = refund_attempts + 1"
                    f" WHERE id IN (SELECT id FROM {table} WHERE status = 'refund_pending'"
                    "  AND next_refund_at <= now() ORDER BY next_refund_at LIMIT $1"
                    "  FOR UPDATE SKIP LOCKED) RETURNING *",
                    BATCH,
                    REFUND_LEASE,
                )
            for row in due:
                refund = refund_of(dict(row))
                if await self._refund(refund):
                    requested += 1
                elif refund.attempts >= self._max_attempts:
                    dead += 1
        return requested, dead

    async def _refund(self, refund: _Refund) -> bool:
        assert self._billing.provider is not None
        try:
            settled = await self._billing.provider.refund(
                payment_id=refund.payment_id,
                payment_intent=refund.payment_intent,
                amount=refund.amount,
                currency=refund.currency,
                stray_charge_id=refund.stray_charge_id,
            )
        except ProviderError as error:
            await self._refund_failed(refund, str(error))
            return False
        async with self._db.run_as(Caller.service()) as conn:
            await conn.execute(
                f"UPDATE {refund.table} SET refund_requested_at = now(), next_refund_at = NULL"
                " WHERE id = $1 AND status = 'refund_pending'",
                refund.id,
            )
        if settled is not None:  # the local provider's refunds settle at once
            await apply_event(self._db, settled, correlation_id=None)
        return True

    async def _refund_failed(self, refund: _Refund, error: str) -> None:
        async with self._db.run_as(Caller.service()) as conn:
            if refund.attempts < self._max_attempts:
                await conn.execute(
                    f"UPDATE {refund.table} SET next_refund_at = now() + $2::interval"
                    " WHERE id = $1 AND status = 'refund_pending'",
                    refund.id,
                    dt.timedelta(seconds=min(2**refund.attempts, 300)),
                )
                return
            # No more tries until an operator replays the dead letter.
            await conn.execute(
                f"UPDATE {refund.table} SET next_refund_at = NULL"
                " WHERE id = $1 AND status = 'refund_pending'",
                refund.id,
            )
            await dead_letter(
                conn,
                subject=REFUND_SUBJECT,
                message_id=f"refund:{refund.id}:{uuid.uuid4()}",
                error_type="RefundFailed",
                error=error
                if refund.stray_charge_id is None
                else f"second charge {refund.payment_intent}: {error}",
                event=refund.dead_letter_event,
                payment_id=refund.payment_id,
                attempts=refund.attempts,
            )
        _log.error("refund of %s %s dead-lettered: %s", refund.table, refund.id, error)
