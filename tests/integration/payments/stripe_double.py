"""A local test double of the few Stripe endpoints serenade calls (Checkout Sessions, refunds),
served over real HTTP so that the official SDK talks to it as to Stripe. It records every call
and, like Stripe, answers a repeated idempotency key with the first answer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, Request, Response, post

__all__ = ["StripeDouble"]


@dataclass
class StripeDouble:
    down: bool = False
    refuse_refunds: bool = False
    sessions: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    _answers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def app(self) -> Litestar:
        @post("/v1/checkout/sessions", status_code=200)
        async def create_session(request: Request[Any, Any, Any]) -> Response[Any]:
            return await self._answer(request, self.sessions, self._session)

        @post("/v1/refunds", status_code=200)
        async def create_refund(request: Request[Any, Any, Any]) -> Response[Any]:
            if self.refuse_refunds and not self.down:
                form = dict(await request.form())
                self.refunds.append({"form": form, "refused": True})
                return Response(
                    {"error": {"type": "invalid_request_error", "message": "refund refused"}},
                    status_code=400,
                )
            return await self._answer(request, self.refunds, self._refund)

        return Litestar([create_session, create_refund], logging_config=None)

    async def _answer(
        self, request: Request[Any, Any, Any], calls: list[dict[str, Any]], make: Any
    ) -> Response[Any]:
        if self.down:
            return Response({"error": {"type": "api_error", "message": "down"}}, status_code=503)
        form = dict(await request.form())
        key = request.headers.get("idempotency-key", "")
        calls.append({"form": form, "idempotency_key": key})
        if key not in self._answers:
            self._answers[key] = make(form)
        return Response(self._answers[key], status_code=200)

    @staticmethod
    def _session(form: dict[str, Any]) -> dict[str, Any]:
        session_id = f"cs_test_{uuid.uuid4().hex}"
        return {
            "id": session_id,
            "object": "checkout.session",
            "url": f"https://checkout.stripe.test/c/pay/{session_id}",
            "client_reference_id": form.get("client_reference_id"),
            "payment_status": "unpaid",
            "status": "open",
        }

    @staticmethod
    def _refund(form: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"re_{uuid.uuid4().hex}",
            "object": "refund",
            "status": "pending",
            "payment_intent": form.get("payment_intent"),
            "amount": int(form.get("amount", 0)),
        }
