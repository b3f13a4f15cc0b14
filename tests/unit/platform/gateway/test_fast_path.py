"""The gateway's lean ASGI path: /fhir interactions reach the gateway without FastAPI's router;
explicit /fhir routes, and methods the gateway has no route for, still go through FastAPI."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from support.in_process import ApiFactory
from support.settings import SettingsFactory

from ehr.entrypoints.api import create_app
from ehr.platform.gateway.router import FallbackRoute

GATEWAY_ROUTE = "/fhir/{path:path}"


def _requests(route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "ehr_http_requests_total", {"method": "GET", "route": route, "status": status}
    )
    return value or 0.0


@pytest.fixture
def app(unit_settings: SettingsFactory) -> FastAPI:
    app = create_app(unit_settings())

    # An explicit /fhir route added later: it wins over the gateway, as with the router.
    @app.get("/fhir/_test/explicit")
    async def explicit() -> dict[str, str]:
        return {"served_by": "fastapi"}

    return app


async def test_interactions_skip_the_router_and_keep_the_gateway_rules(
    app: FastAPI, make_api: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def router_not_expected(*_args: Any) -> None:
        raise AssertionError("the catch-all route was reached through FastAPI's router")

    monkeypatch.setattr(FallbackRoute, "handle", router_not_expected)
    client: httpx.AsyncClient = await make_api(app)
    before = _requests(GATEWAY_ROUTE, "401")
    response = await client.get("/fhir/Patient/123")
    # The gateway's own answer: authentication first, as an OperationOutcome.
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.headers["www-authenticate"].startswith("Bearer")
    # Our middleware still ran: request id, security headers, metrics under the route template.
    assert response.headers["x-request-id"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert _requests(GATEWAY_ROUTE, "401") == before + 1
    # The grammar is checked before authentication, as on the route.
    refused = await client.get("/fhir/Patient/123/_history/1/extra/segments")
    assert refused.status_code in {400, 403, 404}
    assert refused.json()["resourceType"] == "OperationOutcome"


async def test_explicit_routes_and_other_methods_go_through_fastapi(
    app: FastAPI, make_api: ApiFactory
) -> None:
    client: httpx.AsyncClient = await make_api(app)
    explicit = await client.get("/fhir/_test/explicit")
    assert explicit.status_code == 200
    assert explicit.json() == {"served_by": "fastapi"}
    smart = await client.get("/fhir/.well-known/smart-configuration")
    assert smart.status_code == 200
    assert "token_endpoint" in smart.json()
    # No gateway route for OPTIONS/HEAD-less methods such as TRACE: FastAPI's 404/405.
    other = await client.request("TRACE", "/fhir/Patient/123")
    assert other.status_code in {404, 405}
