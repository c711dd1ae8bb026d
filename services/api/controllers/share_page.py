"""``/s/{share_token}``: the share link's HTML page (anyone holding the link)."""

from litestar import Controller, Response, get
from litestar.params import FromPath

from services.api import share_page
from services.api.dependencies import Db, Signer

__all__ = ["SharePageController"]


class SharePageController(Controller):
    path = "/s"

    # An HTML page for people, not part of the JSON API: kept out of the OpenAPI document.
    @get("/{share_token:str}", operation_id="getSharePage", include_in_schema=False)
    async def get_share_page(
        self, db: Db, signer: Signer, share_token: FromPath[str]
    ) -> Response[str]:
        """The share page: the song's title, recipient, occasion, lyrics and an audio player."""
        return await share_page.share_page(db, signer, share_token)
