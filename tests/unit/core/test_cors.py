"""HTTP hardening: CORS from settings, and one problem+json shape for 401/403/404/413/422/429."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from support.in_process import ApiFactory
from support.principals import acting_as, make_principal
from support.settings import SettingsFactory

from ehr.core.config import ApiSettings
from ehr.core.error_handlers import PROBLEM_JSON
from ehr.core.errors import AuthenticationRequired, TooManyRequests
from ehr.core.middleware import InsecureCorsConfigurationError, cors_options
from ehr.entrypoints.api import create_app

FRONTEND = "https://app.ehr.example"
LIMIT = 2048


def _add_test_routes(app: FastAPI) -> None:
    @app.get("/api/_test/throttled")
    async def throttled() -> None:
        raise TooManyRequests("Slow down.", retry_after=30)

    @app.get("/api/_test/login-needed")
    async def login_needed() -> None:
        raise AuthenticationRequired("No valid credentials were presented")

    @app.post("/api/_test/body")
    async def body(payload: dict[str, Any]) -> dict[str, int]:
        return {"keys": len(payload)}


@pytest.fixture
async def app(unit_settings: SettingsFactory) -> FastAPI:
    api = ApiSettings(cors_origins=[FRONTEND], max_body_bytes=LIMIT, business_max_body_bytes=LIMIT)
    app = create_app(unit_settings(api=api))
    _add_test_routes(app)
    return app


@pytest.fixture
async def api(app: FastAPI, make_api: ApiFactory) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await make_api(app)
    return client


def _assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"https://ehr.example/problems/{code}"
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["instance"] == response.request.url.path
    return body


# --- CORS ---------------------------------------------------------------------------------------


async def test_preflight_from_an_allowed_origin(api: httpx.AsyncClient) -> None:
    response = await api.options(
        "/api/audit/records",
        headers={
            "Origin": FRONTEND,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization, X-Purpose-Of-Use",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == FRONTEND
    assert response.headers["access-control-allow-credentials"] == "true"
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "x-purpose-of-use" in allowed


async def test_preflight_from_another_origin_is_not_allowed(api: httpx.AsyncClient) -> None:
    response = await api.options(
        "/api/audit/records",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_simple_request_exposes_the_request_id(api: httpx.AsyncClient) -> None:
    response = await api.get("/health", headers={"Origin": FRONTEND})
    assert response.headers["access-control-allow-origin"] == FRONTEND
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed
    assert "retry-after" in exposed
    other = await api.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


async def test_no_cors_headers_without_configured_origins(unit_api: httpx.AsyncClient) -> None:
    response = await unit_api.get("/health", headers={"Origin": FRONTEND})
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    "origins",
    [["*"], [FRONTEND, "*"], ["https://*.ehr.example"], ["https://app.example/"], ["app.example"]],
)
def test_wildcard_or_malformed_origins_refuse_to_build_the_app(
    unit_settings: SettingsFactory, origins: list[str]
) -> None:
    with pytest.raises(InsecureCorsConfigurationError, match="EHR_API__CORS_ORIGINS"):
        create_app(unit_settings(api=ApiSettings(cors_origins=origins)))


def test_explicit_origins_allow_credentials() -> None:
    options = cors_options(ApiSettings(cors_origins=[FRONTEND, "http://localhost:5173"]))
    assert options is not None
    assert options["allow_credentials"] is True
    assert options["allow_origins"] == [FRONTEND, "http://localhost:5173"]
    assert cors_options(ApiSettings()) is None


# --- problem+json for every 4xx the platform gives ----------------------------------------------


async def test_401_is_a_problem_with_a_bearer_challenge(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/_test/login-needed")
    _assert_problem(response, 401, "authentication_required")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_401_on_a_protected_route_without_credentials(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/audit/records")
    _assert_problem(response, 401, "authentication_required")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_403_without_the_permission(app: FastAPI, api: httpx.AsyncClient) -> None:
    with acting_as(app, make_principal("t-unit", "nurse")):
        response = await api.get("/api/audit/records")
    body = _assert_problem(response, 403, "permission_denied")
    assert "audit:view" in body["detail"]


async def test_404_unknown_path(api: httpx.AsyncClient) -> None:
    _assert_problem(await api.get("/api/no-such-thing"), 404, "not_found")


async def test_413_oversized_body(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/_test/body",
        content=b'{"a":"' + b"x" * (LIMIT + 10) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    _assert_problem(response, 413, "payload_too_large")


async def test_422_invalid_json(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/_test/body", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    body = _assert_problem(response, 422, "validation_failed")
    assert body["errors"]


async def test_422_invalid_audit_filters(app: FastAPI, api: httpx.AsyncClient) -> None:
    with acting_as(app, make_principal("t-unit", "admin")):
        naive = await api.get("/api/audit/records", params={"since": "2026-01-01T00:00:00"})
        bad_patient = await api.get("/api/audit/records", params={"patient": "<script>"})
        bad_format = await api.get("/api/audit/export", params={"format": "xml"})
        bad_purpose = await api.get("/api/audit/records", headers={"X-Purpose-Of-Use": "MARKETING"})
    for response in (naive, bad_patient, bad_format, bad_purpose):
        body = _assert_problem(response, 422, "validation_failed")
        assert "<script>" not in response.text
        assert body["detail"]


async def test_429_carries_retry_after(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/_test/throttled")
    body = _assert_problem(response, 429, "too_many_requests")
    assert response.headers["retry-after"] == "30"
    assert body["retry_after"] == 30
