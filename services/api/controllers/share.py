"""``/v1/share``: what a share link shows, and its audio (anyone holding the link)."""

from litestar import Controller, get
from litestar.params import FromPath
from litestar.response import Stream

from services.api import sharing
from services.api.controllers.params import AUDIO_RESPONSES, Expires, RangeHeader, Signature
from services.api.dependencies import Db, Signer, Store
from services.api.problems import problem_responses
from services.api.schemas import ShareOut

__all__ = ["ShareController"]


class ShareController(Controller):
    path = "/v1/share"
    tags = ("sharing",)

    @get("/{share_token:str}", operation_id="getShare", responses=problem_responses(404, 503))
    async def get_share(self, db: Db, signer: Signer, share_token: FromPath[str]) -> ShareOut:
        """What a share link shows: one variant, its recipient and occasion, a signed audio URL."""
        return await sharing.share_view(db, signer, share_token)

    @get(
        "/{share_token:str}/audio",
        operation_id="getSharedAudio",
        media_type="audio/mpeg",
        responses=AUDIO_RESPONSES,
    )
    async def get_shared_audio(
        self,
        *,
        db: Db,
        storage: Store,
        signer: Signer,
        share_token: FromPath[str],
        expires: Expires = None,
        signature: Signature = None,
        range_header: RangeHeader = None,
    ) -> Stream:
        """The shared variant's audio, through the signed URL the share view gave."""
        return await sharing.serve_shared_audio(
            db,
            storage,
            signer,
            share_token,
            expires=expires,
            signature=signature,
            range_header=range_header,
        )
