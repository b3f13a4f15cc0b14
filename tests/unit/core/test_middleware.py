"""Request id, body-size limit and security headers (pure-ASGI middleware)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from support.in_process import ApiFactory
from support.settings import SettingsFactory

from ehr.core.config import ApiSettings
from ehr.core.error_handlers import FHIR_JSON, PROBLEM_JSON
from ehr.core.middleware import is_valid_request_id
from ehr.core.request_context import request_id_var
from ehr.entrypoints.api import create_app

LIMIT = 1024


def _add_test_routes(app: FastAPI) -> None:
    @app.get("/api/_test/request-id")
    async def current_request_id() -> dict[str, str | None]:
        return {"request_id": request_id_var.get()}

    for prefix in ("/api/_test", "/fhir/_test"):

        @app.post(f"{prefix}/echo")
        async def echo(request: Request) -> dict[str, int]:
            return {"received": len(await request.body())}

    @app.post("/api/_test/json")
    async def json_body(payload: dict[str, Any]) -> dict[str, int]:
        return {"keys": len(payload)}

    @app.get("/api/_test/cached")
    async def cached() -> Response:
        return Response("ok", headers={"Cache-Control": "max-age=60"})


@pytest.fixture
async def api(unit_settings: SettingsFactory, make_api: ApiFactory) -> httpx.AsyncClient:
    app = create_app(
        unit_settings(api=ApiSettings(max_body_bytes=4 * LIMIT, business_max_body_bytes=LIMIT))
    )
    _add_test_routes(app)
    client: httpx.AsyncClient = await make_api(app)
    return client


# --- request id ----------------------------------------------------------------------------------


async def test_incoming_request_id_is_used_and_echoed(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/_test/request-id", headers={"X-Request-ID": "abc-123.def:4_5"})
    assert response.headers["x-request-id"] == "abc-123.def:4_5"
    assert response.json() == {"request_id": "abc-123.def:4_5"}


async def test_request_id_is_generated_when_missing(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/_test/request-id")
    generated = response.headers["x-request-id"]
    assert uuid.UUID(generated).version == 4
    assert response.json() == {"request_id": generated}
    assert request_id_var.get() is None  # reset after the request


@pytest.mark.parametrize(
    "incoming",
    ["has space", "new\tline", "x" * 129, "", "semi;colon", 'quote"', "ünïcode"],
    ids=["space", "control", "too-long", "empty", "semicolon", "quote", "non-ascii"],
)
async def test_invalid_incoming_request_id_is_replaced(
    api: httpx.AsyncClient, incoming: str
) -> None:
    response = await api.get(
        "/api/_test/request-id", headers=[(b"x-request-id", incoming.encode())]
    )
    assert response.headers["x-request-id"] != incoming
    assert uuid.UUID(response.headers["x-request-id"]).version == 4


def test_request_id_validation_rules() -> None:
    assert is_valid_request_id("a")
    assert is_valid_request_id("0" * 128)
    assert not is_valid_request_id("0" * 129)
    assert not is_valid_request_id("a\nb")


async def test_error_responses_carry_the_request_id(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/missing", headers={"X-Request-ID": "trace-me"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "trace-me"
    assert response.json()["request_id"] == "trace-me"


# --- body size limit -----------------------------------------------------------------------------


async def test_body_within_the_limit_is_accepted(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/_test/echo", content=b"x" * LIMIT)
    assert response.status_code == 200
    assert response.json() == {"received": LIMIT}


async def test_declared_content_length_over_the_limit_is_413(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/_test/echo", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["code"] == "payload_too_large"
    assert body["request_id"] == response.headers["x-request-id"]


async def _chunks(total: int, size: int = 100) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        chunk = b"y" * min(size, total - sent)
        sent += len(chunk)
        yield chunk


async def test_chunked_body_over_the_limit_is_413_while_streaming(api: httpx.AsyncClient) -> None:
    request = api.build_request("POST", "/api/_test/echo", content=_chunks(LIMIT * 3))
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    response = await api.send(request)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_chunked_json_over_the_limit_is_413_not_a_parse_error(api: httpx.AsyncClient) -> None:
    async def json_chunks() -> AsyncIterator[bytes]:
        yield b'{"a": "'
        async for chunk in _chunks(LIMIT * 2):
            yield chunk
        yield b'"}'

    response = await api.post("/api/_test/json", content=json_chunks())
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_chunked_body_within_the_limit_is_accepted(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/_test/echo", content=_chunks(LIMIT - 10))
    assert response.status_code == 200
    assert response.json() == {"received": LIMIT - 10}


async def test_fhir_routes_get_an_operation_outcome_413(api: httpx.AsyncClient) -> None:
    response = await api.post("/fhir/_test/echo", content=_chunks(LIMIT * 5))  # over 4 * LIMIT
    assert response.status_code == 413
    assert response.headers["content-type"] == FHIR_JSON
    assert response.json()["issue"][0]["code"] == "too-costly"


# --- security headers ----------------------------------------------------------------------------


async def test_security_headers_on_api_responses(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/_test/request-id")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


async def test_security_headers_on_errors_and_operational_routes(api: httpx.AsyncClient) -> None:
    for response in (await api.get("/api/missing"), await api.get("/health")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"


async def test_a_route_may_choose_its_cache_policy(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/_test/cached")
    assert response.headers["cache-control"] == "max-age=60"


async def test_each_door_has_its_own_body_limit(
    unit_settings: SettingsFactory, make_api: ApiFactory
) -> None:
    from ehr.core.config import CdsHooksSettings

    settings = unit_settings(
        api=ApiSettings(max_body_bytes=8 * LIMIT, business_max_body_bytes=LIMIT),
        cds_hooks=CdsHooksSettings(max_body_bytes=2 * LIMIT),
    )
    api = await make_api(create_app(settings))
    between = b"x" * (3 * LIMIT)  # over the business and CDS limits, under the FHIR door's
    business = await api.post("/api/patients", content=between)
    assert business.status_code == 413
    assert business.json()["limit"] == LIMIT
    cds = await api.post("/cds-services/order-sign", content=between)
    assert cds.status_code == 413
    assert cds.json()["limit"] == 2 * LIMIT
    fhir = await api.post("/fhir/Patient", content=between)
    assert fhir.status_code != 413  # reaches the gateway (which asks for credentials)
