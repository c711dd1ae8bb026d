"""``/v1/variants``: retry a failed variant, and the signed link to a variant's audio."""

import uuid

from litestar import Controller, get, post
from litestar.params import FromPath
from litestar.status_codes import HTTP_202_ACCEPTED

from services.api import variants
from services.api.auth import user_only, user_or_service
from services.api.dependencies import Ctx, Db, Signer
from services.api.problems import problem_responses
from services.api.schemas import AudioLink, VariantOut

__all__ = ["VariantController"]


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
