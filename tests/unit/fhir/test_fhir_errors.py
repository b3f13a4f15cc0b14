"""Every HAPI answer and transport failure maps onto the right ehr.fhir.errors error."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx
from fhir_factories import TENANT_BASE, make_operation_outcome

from ehr.core.errors import (
    AppError,
    BadRequestError,
    ConflictError,
    DependencyUnavailable,
    NotFoundError,
    RequestValidationFailed,
)
from ehr.fhir import (
    FhirBadRequest,
    FhirConflict,
    FhirPreconditionFailed,
    FhirResourceGone,
    FhirResourceNotFound,
    FhirTimeout,
    FhirUnavailable,
    FhirUnprocessable,
    FhirUpstreamError,
    FhirUpstreamRejected,
    TenantFhirClient,
)
from ehr.fhir.errors import (
    MAX_DIAGNOSTICS_CHARS,
    MAX_ISSUES,
    error_for_status,
    passthrough_error,
)

PATIENT_URL = f"{TENANT_BASE}/Patient/p-1"

STATUS_TABLE = [
    (400, FhirBadRequest, BadRequestError, 400, "fhir_bad_request"),
    (401, FhirUpstreamRejected, FhirUpstreamError, 502, "fhir_upstream_rejected"),
    (403, FhirUpstreamRejected, FhirUpstreamError, 502, "fhir_upstream_rejected"),
    (404, FhirResourceNotFound, NotFoundError, 404, "fhir_not_found"),
    (405, FhirBadRequest, BadRequestError, 400, "fhir_bad_request"),
    (409, FhirConflict, ConflictError, 409, "fhir_conflict"),
    (410, FhirResourceGone, NotFoundError, 410, "fhir_gone"),
    (412, FhirPreconditionFailed, ConflictError, 412, "fhir_precondition_failed"),
    (422, FhirUnprocessable, RequestValidationFailed, 422, "fhir_unprocessable"),
    (429, FhirUnavailable, DependencyUnavailable, 503, "fhir_unavailable"),
    (500, FhirUpstreamError, AppError, 502, "fhir_upstream_error"),
    (502, FhirUpstreamError, AppError, 502, "fhir_upstream_error"),
    (503, FhirUpstreamError, AppError, 502, "fhir_upstream_error"),
]


@pytest.mark.parametrize(
    ("upstream", "error_class", "base_class", "status", "code"),
    STATUS_TABLE,
    ids=[str(row[0]) for row in STATUS_TABLE],
)
async def test_hapi_status_maps_to_error(
    hapi: respx.MockRouter,
    tenant_fhir: TenantFhirClient,
    upstream: int,
    error_class: type[AppError],
    base_class: type[AppError],
    status: int,
    code: str,
) -> None:
    outcome = make_operation_outcome("HAPI-1234: something about Patient/p-1")
    hapi.get(PATIENT_URL).respond(upstream, json=outcome)

    with pytest.raises(error_class) as caught:
        await tenant_fhir.read("Patient", "p-1")

    error = caught.value
    assert type(error) is error_class
    assert isinstance(error, base_class)
    assert error.status_code == status
    assert error.code == code
    assert error.extra["upstream_status"] == upstream
    assert set(error.extra) == {"upstream_status", "operation_outcome"}
    kept = error.extra["operation_outcome"]
    assert kept["resourceType"] == "OperationOutcome"
    assert kept["issue"][0]["severity"] == "error"
    assert kept["issue"][0]["code"] == "processing"
    assert "text" not in kept  # HAPI's narrative is dropped
    # The detail is our own sentence, never HAPI's body.
    assert "HAPI-1234" not in error.detail
    assert "{" not in error.detail


@pytest.mark.parametrize("upstream", [400, 404, 409, 412, 422])
async def test_client_error_keeps_diagnostics(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient, upstream: int
) -> None:
    hapi.get(PATIENT_URL).respond(upstream, json=make_operation_outcome("HAPI-0001: reason"))
    with pytest.raises(AppError) as caught:
        await tenant_fhir.read("Patient", "p-1")
    assert caught.value.extra["operation_outcome"]["issue"][0]["diagnostics"] == "HAPI-0001: reason"


@pytest.mark.parametrize("upstream", [500, 503])
async def test_server_error_drops_diagnostics(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient, upstream: int
) -> None:
    internals = "HAPI-0389: org.hibernate.exception.SQLGrammarException: select * from hfj_resource"
    hapi.get(PATIENT_URL).respond(upstream, json=make_operation_outcome(internals))
    with pytest.raises(FhirUpstreamError) as caught:
        await tenant_fhir.read("Patient", "p-1")
    issue = caught.value.extra["operation_outcome"]["issue"][0]
    assert "diagnostics" not in issue
    assert issue["code"] == "processing"


async def test_error_without_operation_outcome(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    hapi.get(PATIENT_URL).respond(502, text="<html><body>Bad Gateway (proxy)</body></html>")
    with pytest.raises(FhirUpstreamError) as caught:
        await tenant_fhir.read("Patient", "p-1")
    assert "operation_outcome" not in caught.value.extra
    assert "html" not in caught.value.detail


async def test_error_with_empty_body(hapi: respx.MockRouter, tenant_fhir: TenantFhirClient) -> None:
    hapi.get(PATIENT_URL).respond(404)
    with pytest.raises(FhirResourceNotFound) as caught:
        await tenant_fhir.read("Patient", "p-1")
    assert caught.value.extra == {"upstream_status": 404}


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ConnectError("Name or service not known"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset by peer"),
    ],
    ids=["refused", "dns", "disconnected", "reset"],
)
async def test_transport_failure_is_unavailable(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient, exc: Exception
) -> None:
    hapi.get(PATIENT_URL).mock(side_effect=exc)
    with pytest.raises(FhirUnavailable) as caught:
        await tenant_fhir.read("Patient", "p-1")
    assert caught.value.status_code == 503
    assert caught.value.code == "fhir_unavailable"
    assert isinstance(caught.value, DependencyUnavailable)
    assert caught.value.__cause__ is exc


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectTimeout("connect timed out"),
        httpx.ReadTimeout("read timed out"),
        httpx.WriteTimeout("write timed out"),
        httpx.PoolTimeout("no connection available"),
    ],
    ids=["connect", "read", "write", "pool"],
)
async def test_timeout_is_fhir_timeout(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient, exc: Exception
) -> None:
    hapi.get(PATIENT_URL).mock(side_effect=exc)
    with pytest.raises(FhirTimeout) as caught:
        await tenant_fhir.read("Patient", "p-1")
    assert caught.value.status_code == 504
    assert caught.value.code == "fhir_timeout"
    assert isinstance(caught.value, DependencyUnavailable)


async def test_success_with_non_json_body_is_upstream_error(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    hapi.get(PATIENT_URL).respond(200, text="<html>login page</html>")
    with pytest.raises(FhirUpstreamError):
        await tenant_fhir.read("Patient", "p-1")


def test_operation_outcome_is_truncated_and_capped() -> None:
    long_text = "x" * (MAX_DIAGNOSTICS_CHARS * 3)
    outcome = make_operation_outcome(long_text)
    outcome["issue"] = outcome["issue"] * (MAX_ISSUES + 5)
    outcome["issue"][0] = {
        **outcome["issue"][0],
        "expression": ["Patient.name[0]", 42],
        "details": {"text": "free text"},
        "extension": [{"url": "urn:x"}],
    }
    error = error_for_status(400, json.dumps(outcome).encode())
    kept: dict[str, Any] = error.extra["operation_outcome"]
    assert len(kept["issue"]) == MAX_ISSUES
    first = kept["issue"][0]
    assert len(first["diagnostics"]) == MAX_DIAGNOSTICS_CHARS
    assert first["expression"] == ["Patient.name[0]"]
    assert set(first) == {"severity", "code", "diagnostics", "expression"}


def test_malformed_operation_outcome_is_tolerated() -> None:
    body = json.dumps({"resourceType": "OperationOutcome", "issue": ["junk", {"code": 5}]})
    error = error_for_status(400, body.encode())
    assert error.extra["operation_outcome"]["issue"] == [{"severity": "error", "code": "exception"}]


def test_other_json_body_is_not_an_operation_outcome() -> None:
    error = error_for_status(404, json.dumps({"resourceType": "Patient", "id": "x"}).encode())
    assert "operation_outcome" not in error.extra


@pytest.mark.parametrize("status", [200, 201, 304, 400, 401, 404, 412, 429, 499])
def test_passthrough_forwards_every_answer_below_500(status: int) -> None:
    assert passthrough_error(status) is None


@pytest.mark.parametrize(
    ("upstream", "error_class", "status", "code"),
    [
        (500, FhirUpstreamError, 502, "fhir_upstream_error"),
        (501, FhirUpstreamError, 502, "fhir_upstream_error"),
        (502, FhirUnavailable, 503, "fhir_unavailable"),
        (503, FhirUnavailable, 503, "fhir_unavailable"),
        (504, FhirUnavailable, 503, "fhir_unavailable"),
        (599, FhirUpstreamError, 502, "fhir_upstream_error"),
    ],
)
def test_passthrough_raises_hapi_failures(
    upstream: int, error_class: type[AppError], status: int, code: str
) -> None:
    error = passthrough_error(upstream)
    assert type(error) is error_class
    assert error.status_code == status
    assert error.code == code
