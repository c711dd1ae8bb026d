"""``/v1/orders`` (create, list, read, the +1 upsell) and ``/v1/variants`` (retry, audio link)."""

import uuid
from typing import Annotated

from litestar import Controller, Response, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED

from services.api.common.access_log import annotate_request
from services.api.common.auth import user_only, user_or_service
from services.api.common.dependencies import Bill, Ctx, Cursors, Db, Signer
from services.api.common.params import Cursor, Limit
from services.api.common.problems import problem_responses
from services.api.orders import queries, variants
from services.api.orders.schemas import AudioLink, CreateOrder, OrderOut, OrderPage, VariantOut

__all__ = ["OrderController", "VariantController"]

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retry-safe creation: the same key within 24 h returns the first order.",
    ),
]

UpsellKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retry-safe upsell: the same key on the same order returns the first variant.",
    ),
]

_REPLAYED = ResponseSpec(
    OrderOut,
    description="The order an earlier request with this Idempotency-Key created "
    "(header Idempotent-Replayed: true).",
)


def _created(result: queries.CreatedOrder) -> Response[OrderOut]:
    annotate_request(order_id=result.order.id)
    if result.replayed:
        return Response(
            result.order, status_code=HTTP_200_OK, headers={"Idempotent-Replayed": "true"}
        )
    return Response(result.order, status_code=HTTP_201_CREATED)


class OrderController(Controller):
    path = "/v1/orders"
    tags = ("orders",)
    security = ({"BearerToken": []},)

    @post(
        "/",
        operation_id="createOrder",
        response_description="The new order; every variant is pending.",
        guards=[user_only],
        status_code=HTTP_201_CREATED,
        responses={HTTP_200_OK: _REPLAYED, **problem_responses(400, 401, 403, 409, 413, 503)},
    )
    async def create_order(
        self,
        *,
        data: JSONBody[CreateOrder],
        ctx: Ctx,
        db: Db,
        billing: Bill,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[OrderOut]:
        """Create an order for the caller; its variants are queued for generation (with
        payments on: once its payment is paid)."""
        created = await queries.create_order(
            db,
            ctx.caller,
            data,
            idempotency_key=idempotency_key,
            correlation_id=ctx.correlation_id,
            billing=billing,
        )
        return _created(created)

    @get(
        "/",
        operation_id="listOrders",
        guards=[user_only],
        responses=problem_responses(400, 401, 403, 503),
    )
    async def list_orders(
        self,
        *,
        ctx: Ctx,
        db: Db,
        cursors: Cursors,
        billing: Bill,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> OrderPage:
        """The caller's orders, newest first, in keyset pages."""
        return await queries.list_orders(
            db, ctx.caller, cursors, limit=limit, cursor=cursor, with_payments=billing.on
        )

    @get(
        "/{order_id:uuid}",
        operation_id="getOrder",
        guards=[user_or_service],
        responses=problem_responses(400, 401, 404, 503),
    )
    async def get_order(
        self, ctx: Ctx, db: Db, billing: Bill, order_id: FromPath[uuid.UUID]
    ) -> OrderOut:
        """One order with its variants (its owner or service_role)."""
        return await queries.get_order(db, ctx.caller, order_id, with_payments=billing.on)

    @delete(
        "/{order_id:uuid}",
        operation_id="cancelOrder",
        guards=[user_only],
        status_code=HTTP_200_OK,
        responses=problem_responses(400, 401, 403, 404, 409, 503),
    )
    async def cancel_order(
        self, ctx: Ctx, db: Db, billing: Bill, order_id: FromPath[uuid.UUID]
    ) -> OrderOut:
        """Cancel an order whose payment awaits (payments on); 409 once it is paid."""
        return await queries.cancel_order(
            db, ctx.caller, order_id, correlation_id=ctx.correlation_id, billing=billing
        )

    @post(
        "/{order_id:uuid}/variants",
        operation_id="addVariant",
        response_description="The new variant, pending.",
        guards=[user_only],
        status_code=HTTP_201_CREATED,
        responses={
            HTTP_200_OK: ResponseSpec(
                VariantOut,
                description="The variant an earlier upsell with this Idempotency-Key made "
                "(header Idempotent-Replayed: true).",
            ),
            **problem_responses(400, 401, 403, 404, 409, 503),
        },
    )
    async def add_variant(
        self,
        *,
        ctx: Ctx,
        db: Db,
        billing: Bill,
        order_id: FromPath[uuid.UUID],
        idempotency_key: UpsellKey = None,
    ) -> Response[VariantOut]:
        """The +1 upsell: add the order's next variant and queue it (with payments on: once
        its own payment is paid)."""
        upsold = await variants.upsell(
            db,
            ctx.caller,
            order_id,
            correlation_id=ctx.correlation_id,
            billing=billing,
            idempotency_key=idempotency_key,
        )
        if upsold.replayed:
            return Response(
                upsold.variant, status_code=HTTP_200_OK, headers={"Idempotent-Replayed": "true"}
            )
        return Response(upsold.variant, status_code=HTTP_201_CREATED)


class VariantController(Controller):
    path = "/v1/variants"
    tags = ("variants",)
    security = ({"BearerToken": []},)

    @post(
        "/{variant_id:uuid}/retry",
        operation_id="retryVariant",
        response_description="The variant, pending again with its attempts reset.",
        guards=[user_or_service],
        status_code=HTTP_202_ACCEPTED,
        responses=problem_responses(400, 401, 404, 409, 503),
    )
    async def retry_variant(self, ctx: Ctx, db: Db, variant_id: FromPath[uuid.UUID]) -> VariantOut:
        """Queue a failed variant again: back to pending with its attempts reset."""
        return await variants.retry(db, ctx.caller, variant_id, correlation_id=ctx.correlation_id)

    @get(
        "/{variant_id:uuid}/audio",
        operation_id="getVariantAudio",
        guards=[user_only],
        responses=problem_responses(400, 401, 403, 404, 409, 503),
    )
    async def get_audio(
        self, ctx: Ctx, db: Db, signer: Signer, variant_id: FromPath[uuid.UUID]
    ) -> AudioLink:
        """A short-lived signed URL to a complete variant's audio."""
        return await variants.audio_link(db, ctx.caller, signer, variant_id)
