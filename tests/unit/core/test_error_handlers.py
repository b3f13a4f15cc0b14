"""The one error handler: problem+json on the business API, OperationOutcome under /fhir."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Query
from pydantic import BaseModel
from support.in_process import ApiFactory
from support.settings import SettingsFactory

from ehr.core import errors
from ehr.core.error_handlers import FHIR_JSON, PROBLEM_JSON, PROBLEM_TYPE_BASE
from ehr.entrypoints.api import create_app
from ehr.fhir import errors as fhir_errors

SECRET_DETAIL = "connection string postgres://user:hunter2@db"  # must never reach a body

APP_ERRORS: list[type[errors.AppError]] = [
    errors.AppError,
    errors.BadRequestError,
    errors.RequestValidationFailed,
    errors.AuthenticationRequired,
    errors.PermissionDenied,
    errors.NotFoundError,
    errors.ConflictError,
    errors.PayloadTooLarge,
    errors.DependencyUnavailable,
    fhir_errors.FhirUnavailable,
    fhir_errors.FhirTimeout,
    fhir_errors.FhirResourceNotFound,
    fhir_errors.FhirResourceGone,
    fhir_errors.FhirPreconditionFailed,
    fhir_errors.FhirUpstreamError,
]

BY_NAME = {cls.__name__: cls for cls in APP_ERRORS}

UPSTREAM_OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "processing", "diagnostics": "HAPI-0450: bad"}],
}


class Payload(BaseModel):
    name: str
    count: int


def _add_test_routes(app: FastAPI) -> None:
    for prefix in ("/api/_test", "/fhir/_test"):

        @app.get(f"{prefix}/raise/{{name}}")
        async def raise_app_error(name: str) -> None:
            raise BY_NAME[name](extra={"hint": "retry later"})

        @app.get(f"{prefix}/upstream")
        async def raise_with_outcome() -> None:
            raise fhir_errors.FhirUnprocessable(
                extra={"operation_outcome": UPSTREAM_OUTCOME, "upstream_status": 422}
            )

        @app.get(f"{prefix}/boom")
        async def boom() -> None:
            raise RuntimeError(SECRET_DETAIL)

        @app.post(f"{prefix}/validate")
        async def validate(payload: Payload, limit: int = Query(le=10)) -> Payload:
            return payload


@pytest.fixture
async def api(unit_settings: SettingsFactory, make_api: ApiFactory) -> httpx.AsyncClient:
    app = create_app(unit_settings())
    _add_test_routes(app)
    return await make_api(app)


def _assert_problem(
    response: httpx.Response, status: int, code: str, instance: str
) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM_TYPE_BASE + code
    assert body["code"] == code
    assert body["status"] == status
    assert body["instance"] == instance
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


@pytest.mark.parametrize("error", APP_ERRORS, ids=lambda cls: cls.__name__)
async def test_app_errors_are_problem_documents(
    api: httpx.AsyncClient, error: type[errors.AppError]
) -> None:
    path = f"/api/_test/raise/{error.__name__}"
    response = await api.get(path)
    body = _assert_problem(response, error.status_code, error.code, path)
    assert body["title"] == error.title
    assert body["hint"] == "retry later"  # extension member from AppError.extra


async def test_upstream_outcome_is_not_shown_on_the_business_api(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/_test/upstream")
    body = _assert_problem(response, 422, "fhir_unprocessable", "/api/_test/upstream")
    assert "operation_outcome" not in body
    assert "upstream_status" not in body
    assert "HAPI-0450" not in response.text


async def test_validation_errors_list_locations_without_echoing_input(
    api: httpx.AsyncClient,
) -> None:
    response = await api.post(
        "/api/_test/validate?limit=99", json={"name": "Jane Q Patient", "count": "many"}
    )
    body = _assert_problem(response, 422, "validation_failed", "/api/_test/validate")
    locations = {tuple(error["loc"]) for error in body["errors"]}
    assert locations == {("body", "count"), ("query", "limit")}
    assert all({"loc", "message", "type"} == set(error) for error in body["errors"])
    assert "many" not in response.text
    assert "Jane" not in response.text


async def test_malformed_json_is_a_validation_problem(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/_test/validate?limit=1",
        content=b'{"name": ',
        headers={"content-type": "application/json"},
    )
    _assert_problem(response, 422, "validation_failed", "/api/_test/validate")


async def test_unknown_route_is_404_problem(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/no-such-thing")
    _assert_problem(response, 404, "not_found", "/api/no-such-thing")


async def test_wrong_method_is_405_problem_with_allow(api: httpx.AsyncClient) -> None:
    response = await api.delete("/health")
    _assert_problem(response, 405, "method_not_allowed", "/health")
    assert response.headers["allow"] == "GET"


async def test_unexpected_exception_is_500_without_details_and_is_logged(
    api: httpx.AsyncClient,
) -> None:
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "ehr")
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        response = await api.get("/api/_test/boom")
    finally:
        handler.setStream(previous)
    body = _assert_problem(response, 500, "internal_error", "/api/_test/boom")
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    assert set(body) == {"type", "title", "status", "detail", "instance", "code", "request_id"}
    # Security headers and the request id still apply to the 500.
    assert response.headers["x-content-type-options"] == "nosniff"
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]
    logged = [line for line in lines if line["event"] == "http.request.unhandled_exception"]
    assert len(logged) == 1
    assert logged[0]["request_id"] == response.headers["x-request-id"]
    assert logged[0]["error_type"] == "RuntimeError"
    assert "Traceback" in logged[0]["exception"]  # the trace goes to the log, not the body


# --- FHIR-facing routes --------------------------------------------------------------------------


def _assert_outcome(response: httpx.Response, status: int) -> list[dict[str, Any]]:
    assert response.status_code == status
    assert response.headers["content-type"] == FHIR_JSON
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    issues: list[dict[str, Any]] = body["issue"]
    assert issues
    return issues


@pytest.mark.parametrize(
    ("error", "issue_code"),
    [
        (errors.BadRequestError, "invalid"),
        (errors.AuthenticationRequired, "login"),
        (errors.PermissionDenied, "forbidden"),
        (errors.NotFoundError, "not-found"),
        (fhir_errors.FhirResourceNotFound, "not-found"),
        (fhir_errors.FhirResourceGone, "deleted"),
        (errors.ConflictError, "conflict"),
        (fhir_errors.FhirPreconditionFailed, "conflict"),
        (errors.PayloadTooLarge, "too-costly"),
        (errors.RequestValidationFailed, "processing"),
        (errors.DependencyUnavailable, "transient"),
        (fhir_errors.FhirUnavailable, "transient"),
        (fhir_errors.FhirTimeout, "timeout"),
        (errors.AppError, "exception"),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else value,
)
async def test_fhir_routes_answer_with_operation_outcome(
    api: httpx.AsyncClient, error: type[errors.AppError], issue_code: str
) -> None:
    response = await api.get(f"/fhir/_test/raise/{error.__name__}")
    issues = _assert_outcome(response, error.status_code)
    assert issues[0]["code"] == issue_code
    assert issues[0]["severity"] == ("fatal" if error.status_code >= 500 else "error")
    assert issues[0]["details"]["coding"][0]["code"] == error.code


async def test_fhir_routes_pass_the_upstream_outcome_through(api: httpx.AsyncClient) -> None:
    response = await api.get("/fhir/_test/upstream")
    _assert_outcome(response, 422)
    assert response.json() == UPSTREAM_OUTCOME


async def test_fhir_validation_and_unknown_routes(api: httpx.AsyncClient) -> None:
    response = await api.post("/fhir/_test/validate?limit=1", json={"name": 1})
    issues = _assert_outcome(response, 422)
    assert {issue["code"] for issue in issues} == {"invalid"}
    assert any("body.count" in issue["diagnostics"] for issue in issues)

    issues = _assert_outcome(await api.get("/fhir/DEFAULT/Nothing/here"), 404)
    assert issues[0]["code"] == "not-found"


async def test_fhir_unexpected_exception_hides_details(api: httpx.AsyncClient) -> None:
    response = await api.get("/fhir/_test/boom")
    issues = _assert_outcome(response, 500)
    assert issues[0]["code"] == "exception"
    assert "hunter2" not in response.text


async def test_openapi_documents_problem_responses(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/openapi.json")).json()
    assert "ProblemDetails" in schema["components"]["schemas"]
    responses = schema["paths"]["/api/patients/{patient_id}"]["get"]["responses"]
    for status in ("404", "422", "503"):
        content = responses[status]["content"]
        assert list(content) == [PROBLEM_JSON]
        assert content[PROBLEM_JSON]["schema"]["$ref"] == "#/components/schemas/ProblemDetails"
