"""``/console``: the operator's pages. Each handler parses, calls one function, renders.

Every route here runs ``require_operator`` first (a live session; on a POST, the session's CSRF
token): ``console_router`` mounts this controller under that hook. Pages are server-rendered
Jinja templates that work without JavaScript; ``console.js`` only refreshes the system figures
in place.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template

from services.api.common.correlation import correlation_id_of
from services.api.common.dependencies import Cursors, Db, Messenger, Signer
from services.api.console import deadletters, orders, system
from services.api.console.access import Operator

__all__ = ["ConsoleController"]

Text = Annotated[str | None, QueryParameter(max_length=300)]


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


class ConsoleController(Controller):
    path = "/console"
    include_in_schema = False

    @get("/", name="console:system")
    async def system_page(self, operator: Operator, db: Db, messaging: Messenger) -> Template:
        """The system's figures, refreshed in place."""
        figures = await system.system_figures(db, messaging)
        return Template(
            "console/system.html",
            context={
                "operator": operator,
                "nav": "system",
                "figures": figures,
                "refresh": system.REFRESH_SECONDS,
            },
        )

    @get("/system/figures", name="console:figures")
    async def system_figures(self, db: Db, messaging: Messenger) -> Template:
        """The figures alone (an HTML fragment), for the page's refresh."""
        figures = await system.system_figures(db, messaging)
        return Template("console/_figures.html", context={"figures": figures})

    @get("/dead-letters", name="console:dead-letters")
    async def dead_letters(
        self,
        *,
        operator: Operator,
        db: Db,
        cursors: Cursors,
        unresolved: FromQuery[bool] = False,
        service: Text = None,
        subject: Text = None,
        cursor: Annotated[str | None, QueryParameter(max_length=1024)] = None,
        replayed: Text = None,
        replayed_all: Annotated[int | None, QueryParameter(ge=0)] = None,
        refused: Annotated[int | None, QueryParameter(ge=0)] = None,
    ) -> Template:
        """Dead letters, newest first, filtered."""
        service, subject = (service or "").strip() or None, (subject or "").strip() or None
        page = await deadletters.page(
            db, cursors, unresolved=unresolved, service=service, subject=subject, cursor=cursor
        )
        return Template(
            "console/dead_letters.html",
            context={
                "operator": operator,
                "nav": "dead-letters",
                "page": page,
                "filters": {"unresolved": unresolved, "service": service, "subject": subject},
                "order_of": deadletters.order_of,
                "replayed": _uuid_or_none(replayed),
                "replayed_all": replayed_all,
                "refused": refused,
            },
        )

    @get("/dead-letters/{job_id:uuid}", name="console:dead-letter")
    async def dead_letter(
        self, operator: Operator, db: Db, job_id: FromPath[uuid.UUID]
    ) -> Template:
        """One dead letter, its error and its whole event."""
        job = await deadletters.one(db, job_id)
        return Template(
            "console/dead_letter.html",
            context={
                "operator": operator,
                "nav": "dead-letters",
                "job": job,
                "order_id": deadletters.order_of(job),
            },
        )

    @post("/dead-letters/{job_id:uuid}/replay", name="console:replay")
    async def replay(
        self, request: Request[Any, Any, Any], db: Db, job_id: FromPath[uuid.UUID]
    ) -> Redirect:
        """Replay one row (the admin API's replay)."""
        await deadletters.replay_one(db, job_id, correlation_id=correlation_id_of(request.scope))
        return Redirect(f"/console/dead-letters?replayed={job_id}", status_code=303)

    @get("/dead-letters/replay-all", name="console:replay-all-confirm")
    async def replay_all_confirm(self, operator: Operator, db: Db) -> Template:
        """How many rows a replay of everything would queue, and the button that does it."""
        job_ids = await deadletters.replayable(db)
        return Template(
            "console/replay_all.html",
            context={"operator": operator, "nav": "dead-letters", "count": len(job_ids)},
        )

    @post("/dead-letters/replay-all", name="console:replay-all")
    async def replay_all(self, request: Request[Any, Any, Any], db: Db) -> Redirect:
        """Replay every unresolved replayable row (the CLI's ``--all``)."""
        done = await deadletters.replay_all(db, correlation_id=correlation_id_of(request.scope))
        return Redirect(
            f"/console/dead-letters?replayed_all={len(done.replayed)}&refused={len(done.refused)}",
            status_code=303,
        )

    @get("/orders", name="console:orders")
    async def orders_page(
        self,
        *,
        operator: Operator,
        db: Db,
        order_id: Text = None,
        user_id: Text = None,
        status: Text = None,
        payment_status: Text = None,
    ) -> Template:
        """Find orders by id, user, status, payment status."""
        wanted = orders.Search.parse(
            order_id=order_id, user_id=user_id, status=status, payment_status=payment_status
        )
        problems = wanted.problems()
        found = None if problems else await orders.search(db, wanted)
        return Template(
            "console/orders.html",
            context={
                "operator": operator,
                "nav": "orders",
                "wanted": wanted,
                "found": found,
                "problems": problems,
                "statuses": orders.ORDER_STATUSES,
                "payment_statuses": orders.PAYMENT_STATUSES,
                "limit": orders.SEARCH_LIMIT,
            },
            status_code=400 if problems else 200,
        )

    @get("/orders/{order_id:uuid}", name="console:order")
    async def order(
        self,
        *,
        request: Request[Any, Any, Any],
        operator: Operator,
        db: Db,
        signer: Signer,
        order_id: FromPath[uuid.UUID],
        retried: Annotated[int | None, QueryParameter(ge=1, le=5)] = None,
    ) -> Template:
        """One order: its variants (status, attempts, error, times, share link, audio)."""
        settings = request.app.state.settings
        page = await orders.order_page(db, signer, order_id, public_url=settings.public_url)
        return Template(
            "console/order.html",
            context={"operator": operator, "nav": "orders", "page": page, "retried": retried},
        )

    @post("/variants/{variant_id:uuid}/retry", name="console:retry")
    async def retry(
        self, request: Request[Any, Any, Any], db: Db, variant_id: FromPath[uuid.UUID]
    ) -> Redirect:
        """Queue a failed variant again (the API's retry)."""
        variant = await orders.retry_variant(
            db, variant_id, correlation_id=correlation_id_of(request.scope)
        )
        return Redirect(
            f"/console/orders/{variant.order_id}?retried={variant.variant_number}",
            status_code=303,
        )
