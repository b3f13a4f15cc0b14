"""The API documentation pages (Swagger UI at ``/docs``, ReDoc at ``/redoc``), served offline.

FastAPI's built-in pages load Swagger UI and ReDoc from a CDN, so ``/docs`` is blank on a machine
without internet access (a hospital network, a train). Here the JavaScript and CSS come from the
``fastapi-offline`` package (Swagger UI 5, which renders OpenAPI 3.1, and ReDoc 2) and are
served by the app itself under ``/docs/assets/``; the pages reference nothing else. See
docs/adr/0014-offline-api-docs.md.

The pages carry their own Content-Security-Policy that allows this origin only, so a page that
tried to load something from elsewhere would fail visibly in development instead of silently
depending on the network. The pages and assets are public (``PublicRoute``), like the OpenAPI
document they render.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from ehr.core.errors import NotFoundError
from ehr.core.intake import IntakeRoute
from ehr.platform.auth.authorization import PublicRoute

__all__ = ["ASSETS_PATH", "DOCS_CSP", "router"]

DOCS_PATH: Final = "/docs"
REDOC_PATH: Final = "/redoc"
ASSETS_PATH: Final = "/docs/assets"

# Same origin only. Swagger UI and ReDoc set inline style attributes (hence 'unsafe-inline' for
# styles only); ReDoc runs its search index in a blob: worker. No inline or foreign script.
DOCS_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# The vendored files change only with the package version: let browsers keep them a day.
_ASSET_CACHE_CONTROL: Final = "public, max-age=86400"

# Started by the page through an asset, not an inline script, so the CSP needs no 'unsafe-inline'.
_SWAGGER_INIT_JS: Final = """\
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // The online validator badge would call validator.swagger.io: never from here.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
"""


@dataclass(frozen=True, slots=True)
class _Asset:
    media_type: str
    # A file of the fastapi_offline package's static directory, or None for generated content.
    package_file: str | None = None
    content: str | None = None


_ASSETS: Final[dict[str, _Asset]] = {
    "swagger-ui-bundle.js": _Asset("text/javascript; charset=utf-8", "swagger-ui-bundle.js"),
    "swagger-ui.css": _Asset("text/css; charset=utf-8", "swagger-ui.css"),
    "redoc.standalone.js": _Asset("text/javascript; charset=utf-8", "redoc.standalone.js"),
    "favicon.png": _Asset("image/png", "favicon.png"),
    "swagger-init.js": _Asset("text/javascript; charset=utf-8", content=_SWAGGER_INIT_JS),
}


@cache
def _asset_bytes(name: str) -> bytes:
    asset = _ASSETS[name]
    if asset.content is not None:
        return asset.content.encode()
    assert asset.package_file is not None  # noqa: S101 - every _Asset has one or the other
    return (files("fastapi_offline") / "static" / asset.package_file).read_bytes()


router = APIRouter(include_in_schema=False, dependencies=[PublicRoute], route_class=IntakeRoute)


def _urls(request: Request) -> tuple[str, str]:
    """(assets base, OpenAPI document) for this request, honouring a proxy's root_path."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    openapi = request.app.openapi_url or "/openapi.json"
    return f"{root}{ASSETS_PATH}", f"{root}{openapi}"


def _page(title: str, head: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n{head}</head>\n<body>\n{body}</body>\n</html>\n",
        headers={"Content-Security-Policy": DOCS_CSP},
    )


@router.get(DOCS_PATH)
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI for the OpenAPI document, from local assets only."""
    assets, openapi = (html.escape(url) for url in _urls(request))
    return _page(
        f"{request.app.title} - Swagger UI",
        f'<link rel="icon" type="image/png" href="{assets}/favicon.png">\n'
        f'<link rel="stylesheet" href="{assets}/swagger-ui.css">\n',
        f'<div id="swagger-ui" data-openapi-url="{openapi}"></div>\n'
        f'<script src="{assets}/swagger-ui-bundle.js"></script>\n'
        f'<script src="{assets}/swagger-init.js"></script>\n',
    )


@router.get(REDOC_PATH)
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc for the OpenAPI document, from local assets only (no web fonts)."""
    assets, openapi = (html.escape(url) for url in _urls(request))
    return _page(
        f"{request.app.title} - ReDoc",
        f'<link rel="icon" type="image/png" href="{assets}/favicon.png">\n'
        "<style>body { margin: 0; padding: 0; }</style>\n",
        f'<redoc spec-url="{openapi}"></redoc>\n'
        f'<script src="{assets}/redoc.standalone.js"></script>\n',
    )


@router.get(ASSETS_PATH + "/{name}")
async def docs_asset(name: str) -> Response:
    """One of the vendored Swagger UI / ReDoc files (a fixed list: no path is ever opened)."""
    asset = _ASSETS.get(name)
    if asset is None:
        raise NotFoundError(f"no documentation asset {name!r}")
    return Response(
        _asset_bytes(name),
        media_type=asset.media_type,
        headers={"Cache-Control": _ASSET_CACHE_CONTROL},
    )
