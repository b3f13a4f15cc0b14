"""/docs and /redoc work offline: every asset they reference is served by the app itself."""

from __future__ import annotations

from html.parser import HTMLParser

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from support.settings import SettingsFactory

from ehr.entrypoints.api import create_app
from ehr.entrypoints.api_docs import DOCS_CSP
from ehr.platform.auth.authorization import PERMISSION_ATTRIBUTE


class _References(HTMLParser):
    """Every URL a page makes the browser load (scripts, styles, icons) or hands to a viewer."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and name in {"src", "href", "spec-url", "data-openapi-url"}:
                self.urls.append(value)


def _references(page: str) -> list[str]:
    parser = _References()
    parser.feed(page)
    return parser.urls


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_docs_pages_reference_only_local_assets_that_are_served(
    path: str, unit_api: httpx.AsyncClient
) -> None:
    page = await unit_api.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    # The page forbids loading anything from another origin.
    assert page.headers["content-security-policy"] == DOCS_CSP
    assert "http:" not in DOCS_CSP
    assert "https:" not in DOCS_CSP

    urls = _references(page.text)
    assert any(url.endswith(".js") for url in urls), urls
    assert "/openapi.json" in urls
    assert "//" not in page.text.replace("<!DOCTYPE html>", ""), "an absolute URL in the page"
    for url in urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        asset = await unit_api.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
        if url.endswith(".js"):
            assert asset.headers["content-type"].startswith("text/javascript"), url
        elif url.endswith(".css"):
            assert asset.headers["content-type"].startswith("text/css"), url


async def test_swagger_ui_is_version_5_and_needs_no_online_validator(
    unit_api: httpx.AsyncClient,
) -> None:
    # OpenAPI 3.1 (what FastAPI emits) renders in Swagger UI 5, not 4.
    bundle = await unit_api.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert "SwaggerUIBundle" in bundle.text
    assert bundle.headers["cache-control"] == "public, max-age=86400"
    init = await unit_api.get("/docs/assets/swagger-init.js")
    assert "validatorUrl: null" in init.text
    openapi = (await unit_api.get("/openapi.json")).json()
    assert openapi["openapi"].startswith("3.1")


async def test_unknown_assets_are_404_and_paths_are_never_opened(
    unit_api: httpx.AsyncClient,
) -> None:
    for name in ("nope.js", "..%2F__init__.py", "%2E%2E%2Fcore.py", "static"):
        response = await unit_api.get(f"/docs/assets/{name}")
        assert response.status_code == 404, name


def _markers(dependant: Dependant) -> set[object]:
    found: set[object] = set()
    marker = getattr(dependant.call, PERMISSION_ATTRIBUTE, None)
    if marker is not None:
        found.add(marker)
    for sub in dependant.dependencies:
        found |= _markers(sub)
    return found


def test_docs_routes_are_declared_public_and_not_in_the_openapi_document(
    unit_settings: SettingsFactory,
) -> None:
    app = create_app(unit_settings())
    rules = {
        context.path: _markers(context.dependant)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute) and isinstance(context.dependant, Dependant)
    }
    for path in ("/docs", "/redoc", "/docs/assets/{name}"):
        assert rules[path] == {"public"}, path
    assert not any(path.startswith(("/docs", "/redoc")) for path in app.openapi()["paths"])
