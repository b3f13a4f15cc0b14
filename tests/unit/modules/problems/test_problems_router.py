"""/api/patients/{id}/problems against a respx-mocked HAPI: the error paths the live tests
cannot provoke (HAPI down: 503 and nothing written; a missing If-Match answered before any write)
and the audit notes of a request.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import respx
from fastapi import FastAPI

from ehr.core.error_handlers import PROBLEM_JSON
from ehr.entrypoints.api import create_app
from ehr.platform.audit.dependencies import AuditTrail, get_phi_audit
from ehr.platform.auth.dependencies import get_current_principal
from ehr.platform.auth.principal import Principal

SettingsFactory = Callable[..., Any]
ApiFactory = Callable[..., Any]

BASE = "http://127.0.0.1:9/fhir"  # tests/unit/conftest.py UNIT_FHIR_BASE
TENANT = "unit-tenant"
TENANT_BASE = f"{BASE}/{TENANT}"
PATIENT = {"resourceType": "Patient", "id": "p-1", "meta": {"versionId": "1"}}
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
NEW_PROBLEM = {"code": {"system": ICD10, "code": "I10"}}


def condition(**overrides: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": "c-1",
        "meta": {"versionId": "2"},
        "subject": {"reference": "Patient/p-1"},
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "problem-list-item",
                    }
                ]
            }
        ],
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "verificationStatus": {"coding": [{"code": "confirmed"}]},
        "code": {"coding": [{"system": ICD10, "code": "I10"}]},
    }
    resource.update(overrides)
    return resource


@pytest.fixture
def hapi() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


@pytest.fixture
def trails() -> list[AuditTrail]:
    return []


@pytest.fixture
async def api(
    unit_settings: SettingsFactory, make_api: ApiFactory, trails: list[AuditTrail]
) -> httpx.AsyncClient:
    app: FastAPI = create_app(unit_settings())
    principal = Principal(
        kind="user",
        subject=uuid.uuid4(),
        tenant=TENANT,
        tenant_id=uuid.uuid4(),
        roles=frozenset({"physician"}),
        username="unit.physician",
    )

    async def current() -> Principal:
        return principal

    async def trail() -> AsyncIterator[AuditTrail]:
        audit = AuditTrail()
        trails.append(audit)
        yield audit

    app.dependency_overrides[get_current_principal] = current
    app.dependency_overrides[get_phi_audit] = trail
    client: httpx.AsyncClient = await make_api(app)
    return client


def _problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == code


async def test_hapi_down_on_create_is_503(api: httpx.AsyncClient, hapi: respx.MockRouter) -> None:
    hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=PATIENT)
    hapi.post(f"{TENANT_BASE}/Condition").mock(side_effect=httpx.ConnectError("refused"))
    response = await api.post("/api/patients/p-1/problems", json=NEW_PROBLEM)
    _problem(response, 503, "fhir_unavailable")


async def test_update_without_if_match_is_428_before_any_write(
    api: httpx.AsyncClient, hapi: respx.MockRouter
) -> None:
    hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=PATIENT)
    write = hapi.put(f"{TENANT_BASE}/Condition/c-1").respond(json=condition())
    read = hapi.get(f"{TENANT_BASE}/Condition/c-1").respond(json=condition())
    response = await api.put("/api/patients/p-1/problems/c-1", json=NEW_PROBLEM)
    _problem(response, 428, "if_match_required")
    assert not write.called
    assert not read.called


async def test_stale_if_match_is_412_before_any_write(
    api: httpx.AsyncClient, hapi: respx.MockRouter
) -> None:
    hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=PATIENT)
    hapi.get(f"{TENANT_BASE}/Condition/c-1").respond(json=condition())
    write = hapi.put(f"{TENANT_BASE}/Condition/c-1").respond(json=condition())
    response = await api.put(
        "/api/patients/p-1/problems/c-1", json=NEW_PROBLEM, headers={"If-Match": 'W/"1"'}
    )
    _problem(response, 412, "fhir_precondition_failed")
    assert not write.called


async def test_update_sends_the_version_to_hapi_and_keeps_unknown_fields(
    api: httpx.AsyncClient, hapi: respx.MockRouter, trails: list[AuditTrail]
) -> None:
    hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=PATIENT)
    evidence = [{"detail": [{"reference": "Observation/o-1"}]}]
    hapi.get(f"{TENANT_BASE}/Condition/c-1").respond(json=condition(evidence=evidence))
    write = hapi.put(f"{TENANT_BASE}/Condition/c-1").respond(
        json=condition(meta={"versionId": "3"})
    )
    body = {**NEW_PROBLEM, "clinical_status": "resolved", "abatement": "2024-01-01"}
    response = await api.put("/api/patients/p-1/problems/c-1", json=body, headers={"If-Match": "2"})
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == 'W/"3"'
    sent = write.calls.last.request
    assert sent.headers["If-Match"] == 'W/"2"'
    resource = json.loads(sent.content)
    assert resource["evidence"] == evidence
    assert resource["abatementDateTime"] == "2024-01-01"
    assert resource["clinicalStatus"]["coding"][0]["code"] == "resolved"
    notes = [(n.action, n.resource_id, n.patient_id) for t in trails for n in t.notes]
    assert notes == [("problem:update", "c-1", "p-1")]


async def test_a_condition_not_on_the_problem_list_is_not_found(
    api: httpx.AsyncClient, hapi: respx.MockRouter, trails: list[AuditTrail]
) -> None:
    hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=PATIENT)
    encounter_diagnosis = condition(category=[{"coding": [{"code": "encounter-diagnosis"}]}])
    hapi.get(f"{TENANT_BASE}/Condition/c-1").respond(json=encounter_diagnosis)
    _problem(await api.get("/api/patients/p-1/problems/c-1"), 404, "fhir_not_found")
    assert [n for t in trails for n in t.notes] == []
