"""``/media``: stored audio behind short-lived signed URLs, with HTTP Range support."""

from litestar import Controller, get
from litestar.params import FromPath
from litestar.response import Stream
from litestar.types import Scope

from services.api import media
from services.api.controllers.params import AUDIO_RESPONSES, Expires, RangeHeader, Signature
from services.api.dependencies import Signer, Store

__all__ = ["MediaController"]


class MediaController(Controller):
    path = "/media"
    tags = ("media",)

    @get(
        "/{storage_path:path}",
        operation_id="getMedia",
        media_type="audio/mpeg",
        responses=AUDIO_RESPONSES,
    )
    async def get_media(
        self,
        *,
        scope: Scope,
        storage: Store,
        signer: Signer,
        storage_path: FromPath[str],
        expires: Expires = None,
        signature: Signature = None,
        range_header: RangeHeader = None,
    ) -> Stream:
        """The audio at a signed storage path (403 without a valid signature)."""
        return await media.serve_media(
            storage,
            signer,
            raw_path=scope.get("raw_path") or b"",
            storage_path=storage_path,
            expires=expires,
            signature=signature,
            range_header=range_header,
        )
