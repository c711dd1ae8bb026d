"""``/v1/share`` (what a share link shows, and its audio), ``/s`` (the share link's HTML page)
and ``/media`` (stored audio behind signed URLs): everything anyone holding a link may fetch."""

from typing import Annotated

from litestar import Controller, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, PathParameter, QueryParameter
from litestar.response import Stream, Template
from litestar.types import Scope

from services.api.common.dependencies import Db, Signer, Store
from services.api.common.problems import problem_responses
from services.api.sharing import media, page, shares
from services.api.sharing.schemas import ShareOut

__all__ = ["MediaController", "ShareController", "SharePageController"]

Expires = Annotated[
    str | None, QueryParameter(max_length=20, description="Unix time the URL expires.")
]
Signature = Annotated[
    str | None, QueryParameter(max_length=128, description="The URL's signature.")
]
RangeHeader = Annotated[
    str | None, HeaderParameter(name="Range", max_length=200, description="One byte range.")
]
AUDIO_RESPONSES = {
    206: ResponseSpec(None, description="The requested byte range (Content-Range says which)."),
    **problem_responses(
        400,
        403,
        404,
        416,
        503,
        described={
            400: "The signed path is not a plain storage key (traversal, encoded slashes).",
            403: "The signature is missing, altered or expired.",
            404: "No audio at this path.",
        },
    ),
}


class ShareController(Controller):
    path = "/v1/share"
    tags = ("sharing",)

    @get(
        "/{share_token:str}",
        operation_id="getShare",
        # 400 only for a request Litestar cannot parse; a token that is no token is 404.
        responses=problem_responses(400, 404, 503, described={400: "A malformed request."}),
    )
    async def get_share(self, db: Db, signer: Signer, share_token: FromPath[str]) -> ShareOut:
        """What a share link shows: one variant, its recipient and occasion, a signed audio URL."""
        return await shares.share_view(db, signer, share_token)

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
        return await shares.serve_shared_audio(
            db,
            storage,
            signer,
            share_token,
            expires=expires,
            signature=signature,
            range_header=range_header,
        )


class SharePageController(Controller):
    path = "/s"

    # An HTML page for people, not part of the JSON API: kept out of the OpenAPI document.
    @get("/{share_token:str}", operation_id="getSharePage", include_in_schema=False)
    async def get_share_page(self, db: Db, signer: Signer, share_token: FromPath[str]) -> Template:
        """The share page: the song's title, recipient, occasion, lyrics and an audio player."""
        return await page.share_page(db, signer, share_token)


# Audio is stored at {user_id}/{order_id}/{file}: one path parameter per segment, so that a
# client generated from the OpenAPI document builds the URL (a single parameter holding "/"
# is percent-encoded by generators, and an encoded slash is refused here).
_SEGMENT = {"min_length": 1, "max_length": 128}
UserSegment = Annotated[str, PathParameter(description="The owner's user id.", **_SEGMENT)]
OrderSegment = Annotated[str, PathParameter(description="The order's id.", **_SEGMENT)]
FileSegment = Annotated[
    str, PathParameter(description="The file, e.g. `variant-1.mp3`.", **_SEGMENT)
]


class MediaController(Controller):
    path = "/media"
    tags = ("media",)

    @get(
        "/{user_id:str}/{order_id:str}/{file:str}",
        operation_id="getMedia",
        media_type="audio/mpeg",
        responses=AUDIO_RESPONSES,
        description="Follow the `url` that `GET /v1/variants/{variant_id}/audio` returns as "
        "given: it is opaque, its path and query are signed together, and it expires. A "
        "generated client may call this operation with the URL's three path segments and its "
        "`expires` and `signature` query parameters instead. 403 without a valid signature.",
    )
    async def get_media(
        self,
        *,
        scope: Scope,
        storage: Store,
        signer: Signer,
        user_id: UserSegment,
        order_id: OrderSegment,
        file: FileSegment,
        expires: Expires = None,
        signature: Signature = None,
        range_header: RangeHeader = None,
    ) -> Stream:
        """The audio behind a signed URL (the signed URL followed as given)."""
        return await media.serve_media(
            storage,
            signer,
            raw_path=scope.get("raw_path") or b"",
            storage_path=f"{user_id}/{order_id}/{file}",
            expires=expires,
            signature=signature,
            range_header=range_header,
        )
