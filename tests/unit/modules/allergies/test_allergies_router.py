"""/api/patients/{id}/allergies against a respx-mocked HAPI: the error paths the live tests
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
SNOMED = "http://snomed.info/sct"
NEW_ALLERGY = {"substance": {"system": SNOMED, "code": "764146007"}, "category": ["medication"]}


def allergy(**overrides: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": "a-1",
        "meta": {"versionId": "2"},
        "patient": {"reference": "Patient/p-1"},
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "verificationStatus": {"coding": [{"code": "confirmed"}]},
        "code": {"coding": [{"system": SNOMED, "code": "764146007"}]},
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
        roles=frozenset({"nurse"}),
        username="unit.nurse",
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
    hapi.post(f"{TENANT_BASE}/AllergyIntolerance").mock(side_effect=httpx.ConnectError("refused"))
    response = await api.post("/api/patients/p-1/allergies", json=NEW_ALLERGY)
    _problem(response, 503, "fhir_unavailable")


async def test_update_without_if_match_is_428_before_any_read_or_write(
    api: httpx.AsyncClient, hapi: respx.MockRouter
) -> None:
    hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=PATIENT)
    read = hapi.get(f"{TENANT_BASE}/AllergyIntolerance/a-1").respond(json=allergy())
    write = hapi.put(f"{TENANT_BASE}/AllergyIntolerance/a-1").respond(json=allergy())
    response = await api.put("/api/patients/p-1/allergies/a-1", json=NEW_ALLERGY)
    _problem(response, 428, "if_match_required")
    assert not read.called
    assert not write.called


async def test_entered_in_error_drops_clinical_status_and_is_versioned(
    api: httpx.AsyncClient, hapi: respx.MockRouter, trails: list[AuditTrail]
) -> None:
    hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=PATIENT)
    hapi.get(f"{TENANT_BASE}/AllergyIntolerance/a-1").respond(json=allergy())
    stored = allergy(
        meta={"versionId": "3"},
        verificationStatus={"coding": [{"code": "entered-in-error"}]},
    )
    del stored["clinicalStatus"]
    write = hapi.put(f"{TENANT_BASE}/AllergyIntolerance/a-1").respond(json=stored)
    response = await api.post("/api/patients/p-1/allergies/a-1/entered-in-error")
    assert response.status_code == 200, response.text
    assert response.json()["verification_status"] == "entered-in-error"
    sent = write.calls.last.request
    # No If-Match given: the version just read guards the write.
    assert sent.headers["If-Match"] == 'W/"2"'
    resource = json.loads(sent.content)
    assert "clinicalStatus" not in resource
    assert resource["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    notes = [(n.action, n.resource_id, n.patient_id) for t in trails for n in t.notes]
    assert notes == [("allergy:entered-in-error", "a-1", "p-1")]


async def test_another_patients_allergy_is_not_found_and_not_audited(
    api: httpx.AsyncClient, hapi: respx.MockRouter, trails: list[AuditTrail]
) -> None:
    hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=PATIENT)
    theirs = allergy(patient={"reference": "Patient/p-2"})
    hapi.get(f"{TENANT_BASE}/AllergyIntolerance/a-1").respond(json=theirs)
    _problem(await api.get("/api/patients/p-1/allergies/a-1"), 404, "fhir_not_found")
    assert [n for t in trails for n in t.notes] == []
