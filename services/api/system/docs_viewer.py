"""The browsable docs at ``/schema``: Swagger UI, its files served by the API itself.

Litestar's viewers load their scripts from a CDN, unpinned ("latest"): the page was blank
offline and changed under us. The files here come from the pinned ``swagger-ui-py`` package
(25.7.1 ships Swagger UI 5.24.2, as its bundle says), which carries Swagger UI's own dist
folder; only the files the page needs are served, each by name.
"""

import importlib.util
from pathlib import Path
from typing import Final

from litestar import Controller, Response, get
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.params import FromPath
from litestar.response import File

from services.api.common.problems import NotFound

__all__ = ["ASSETS_PATH", "VIEWER_ASSETS", "ViewerAssetsController", "viewer_plugin"]

ASSETS_PATH: Final = "/schema/assets"
# Name served -> content type: what the page loads, nothing else of the package.
VIEWER_ASSETS: Final = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
# The files change only with the package's pin; a day of caching costs nothing.
_CACHE_CONTROL: Final = "public, max-age=86400"


def _static_folder() -> Path:
    # Located without importing swagger_ui: its __init__ wires web-framework adapters we do
    # not use.
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (a dependency of serenade)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def viewer_plugin() -> SwaggerRenderPlugin:
    """Swagger UI at ``/schema`` (and ``/schema/swagger``), every file from ``ASSETS_PATH``."""
    return SwaggerRenderPlugin(
        js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        css_url=f"{ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
    )


class ViewerAssetsController(Controller):
    path = ASSETS_PATH

    @get("/{name:str}", operation_id="getViewerAsset", include_in_schema=False)
    async def asset(self, name: FromPath[str]) -> Response[bytes] | File:
        """One file of the docs viewer."""
        media_type = VIEWER_ASSETS.get(name)
        if media_type is None:
            raise NotFound("no such file of the docs viewer")
        return File(
            _static_folder() / name,
            media_type=media_type,
            content_disposition_type="inline",
            headers={"Cache-Control": _CACHE_CONTROL, "X-Content-Type-Options": "nosniff"},
        )
