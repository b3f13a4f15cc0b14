"""/api/patients/{id}/allergies against the real HAPI: create → read → update (If-Match) → stale
If-Match 412 → entered-in-error → hidden from the list; wrong patient, roles and compartment; an
allergy recorded through the API is what the medication-safety check finds.

The caller is injected with ``dependency_overrides`` (the role is switched per test through
``caller``); real tokens and tenants are exercised by the acceptance matrix.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from support.database import Sessions

from ehr.core.config import Settings
from ehr.core.db.models import AuditRecord
from ehr.core.error_handlers import PROBLEM_JSON
from ehr.fhir import TenantFhirClient
from ehr.platform.auth.dependencies import get_current_principal
from ehr.platform.auth.principal import Principal

pytestmark = pytest.mark.integration

SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
PENICILLIN = {"system": SNOMED, "code": "764146007", "display": "Penicillin"}
AMOXICILLIN_250MG_CAPSULE = "308182"  # RxNorm SCD the shipped table resolves
TagForCleanup = Callable[[str, str], Awaitable[None]]


class Caller:
    """The principal the app sees; tests switch its role."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.principal = self.make("physician")

    def make(self, role: str, patient_id: str | None = None) -> Principal:
        return Principal(
            kind="user",
            subject=uuid.uuid4(),
            tenant=self.tenant,
            tenant_id=uuid.uuid4(),
            roles=frozenset({role}),
            username=f"live.{role}",
            patient_id=patient_id,
        )

    def be(self, role: str, patient_id: str | None = None) -> None:
        self.principal = self.make(role, patient_id)


@pytest.fixture(scope="module")
def caller(app: FastAPI, settings: Settings) -> Iterator[Caller]:
    holder = Caller(settings.fhir.default_tenant)

    async def current() -> Principal:
        return holder.principal

    app.dependency_overrides[get_current_principal] = current
    try:
        yield holder
    finally:
        app.dependency_overrides.pop(get_current_principal, None)


@pytest.fixture(autouse=True)
def as_physician(caller: Caller) -> None:
    caller.be("physician")


async def _patient(live_tenant_fhir: TenantFhirClient, test_tag: dict[str, str]) -> str:
    created = await live_tenant_fhir.create(
        {
            "resourceType": "Patient",
            "meta": {"tag": [test_tag]},
            "name": [{"family": f"Zzallergy{test_tag['code'].replace('-', '')}"}],
        }
    )
    return str(created["id"])


@pytest.fixture
async def patient_id(live_tenant_fhir: TenantFhirClient, test_tag: dict[str, str]) -> str:
    return await _patient(live_tenant_fhir, test_tag)


def _allergy(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "substance": PENICILLIN,
        "substance_text": "Penicillin",
        "clinical_status": "active",
        "verification_status": "confirmed",
        "type": "allergy",
        "category": ["medication"],
        "criticality": "high",
        "reactions": [
            {
                "manifestation": {"system": SNOMED, "code": "271807003"},
                "manifestation_text": "Rash",
                "severity": "moderate",
            }
        ],
    }
    body.update(overrides)
    return body


async def _create(
    api: httpx.AsyncClient, tag: TagForCleanup, patient_id: str, body: dict[str, Any]
) -> httpx.Response:
    response = await api.post(f"/api/patients/{patient_id}/allergies", json=body)
    assert response.status_code == 201, response.text
    await tag("AllergyIntolerance", response.json()["id"])
    return response


def _assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == code


async def _check_amoxicillin(api: httpx.AsyncClient, patient_id: str) -> httpx.Response:
    response = await api.post(
        f"/api/medication-safety/patients/{patient_id}/check",
        json={
            "proposed": [
                {"id": "amox", "codings": [{"system": RXNORM, "code": AMOXICILLIN_250MG_CAPSULE}]}
            ]
        },
    )
    assert response.status_code == 200, response.text
    return response


async def test_allergy_lifecycle(
    api: httpx.AsyncClient,
    tag_for_cleanup: TagForCleanup,
    live_tenant_fhir: TenantFhirClient,
    patient_id: str,
) -> None:
    created = await _create(api, tag_for_cleanup, patient_id, _allergy())
    allergy = created.json()
    url = created.headers["location"]
    assert url == f"/api/patients/{patient_id}/allergies/{allergy['id']}"
    assert allergy["substance"] == PENICILLIN
    assert allergy["checkable_by_medication_safety"] is True
    assert allergy["criticality"] == "high"
    assert allergy["reactions"][0]["severity"] == "moderate"
    assert allergy["recorder"]["display"] == "live.physician"
    assert created.headers["etag"] == f'W/"{allergy["version"]}"'

    stored = await live_tenant_fhir.read("AllergyIntolerance", allergy["id"])
    assert stored["patient"] == {"reference": f"Patient/{patient_id}"}
    assert stored["clinicalStatus"]["coding"][0]["system"] == (
        "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
    )

    read = await api.get(url)
    assert read.status_code == 200
    assert read.json() == allergy
    etag = read.headers["etag"]

    updated = await api.put(
        url, json=_allergy(verification_status="unconfirmed"), headers={"If-Match": etag}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["verification_status"] == "unconfirmed"
    stale = await api.put(url, json=_allergy(), headers={"If-Match": etag})
    _assert_problem(stale, 412, "fhir_precondition_failed")
    _assert_problem(await api.put(url, json=_allergy()), 428, "if_match_required")

    food = await _create(
        api,
        tag_for_cleanup,
        patient_id,
        _allergy(
            substance={"system": SNOMED, "code": "256349002"},
            substance_text="Peanut",
            category=["food"],
            criticality="low",
            clinical_status="resolved",
        ),
    )
    assert food.json()["checkable_by_medication_safety"] is False
    listed = (await api.get(f"/api/patients/{patient_id}/allergies")).json()
    assert [a["id"] for a in listed["items"]] == [allergy["id"], food.json()["id"]]
    only_resolved = await api.get(
        f"/api/patients/{patient_id}/allergies", params={"clinical_status": "resolved"}
    )
    assert [a["id"] for a in only_resolved.json()["items"]] == [food.json()["id"]]

    gone = await api.post(f"{url}/entered-in-error")
    assert gone.status_code == 200, gone.text
    assert gone.json()["verification_status"] == "entered-in-error"
    assert gone.json()["clinical_status"] is None
    assert (await live_tenant_fhir.read("AllergyIntolerance", allergy["id"]))["id"] == allergy["id"]
    listed = (await api.get(f"/api/patients/{patient_id}/allergies")).json()
    assert [a["id"] for a in listed["items"]] == [food.json()["id"]]
    after = await api.put(url, json=_allergy(), headers={"If-Match": gone.headers["etag"]})
    _assert_problem(after, 409, "allergy_entered_in_error")


async def test_medication_safety_sees_the_recorded_allergy(
    api: httpx.AsyncClient, tag_for_cleanup: TagForCleanup, patient_id: str
) -> None:
    before = await _check_amoxicillin(api, patient_id)
    assert before.json()["issues"] == []
    created = await _create(api, tag_for_cleanup, patient_id, _allergy())
    after = await _check_amoxicillin(api, patient_id)
    issues = after.json()["issues"]
    assert [i["rule_id"] for i in issues] == ["ALG-SAME-GROUP"]
    reference = f"AllergyIntolerance/{created.json()['id']}"
    assert issues[0]["implicated"][1]["reference"] == reference
    # Entered in error: the engine no longer counts it.
    await api.post(f"{created.headers['location']}/entered-in-error")
    cleared = await _check_amoxicillin(api, patient_id)
    assert cleared.json()["issues"] == []


async def test_free_text_allergy_is_flagged_uncheckable(
    api: httpx.AsyncClient, tag_for_cleanup: TagForCleanup, patient_id: str
) -> None:
    created = await _create(
        api,
        tag_for_cleanup,
        patient_id,
        _allergy(substance=None, substance_text="Red dye cough syrup"),
    )
    assert created.json()["checkable_by_medication_safety"] is False
    assert "free text" in created.json()["medication_safety_note"]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"patient_id": "someone-else"}, "patient_mismatch"),
        (
            {"substance": {"system": "http://hl7.org/fhir/sid/ndc", "code": "1"}},
            "unknown_code_system",
        ),
        ({"substance": {"system": RXNORM, "code": "RX7980"}}, "invalid_code"),
        ({"substance": None, "substance_text": None}, "substance_required"),
        ({"reactions": [{"severity": "mild"}]}, "manifestation_required"),
        ({"onset": "2999-01-01"}, "date_in_future"),
        ({"criticality": "medium"}, "validation_failed"),
    ],
)
async def test_bad_allergies_are_422(
    api: httpx.AsyncClient, patient_id: str, overrides: dict[str, Any], code: str
) -> None:
    response = await api.post(f"/api/patients/{patient_id}/allergies", json=_allergy(**overrides))
    _assert_problem(response, 422, code)


async def test_another_patients_allergy_is_not_found(
    api: httpx.AsyncClient,
    tag_for_cleanup: TagForCleanup,
    live_tenant_fhir: TenantFhirClient,
    test_tag: dict[str, str],
    patient_id: str,
) -> None:
    created = await _create(api, tag_for_cleanup, patient_id, _allergy())
    other_patient = await _patient(live_tenant_fhir, test_tag)
    response = await api.get(f"/api/patients/{other_patient}/allergies/{created.json()['id']}")
    _assert_problem(response, 404, "fhir_not_found")


@pytest.mark.parametrize("role", ["front_desk", "billing"])
async def test_front_desk_and_billing_are_refused(
    api: httpx.AsyncClient, caller: Caller, patient_id: str, role: str
) -> None:
    caller.be(role)
    _assert_problem(
        await api.get(f"/api/patients/{patient_id}/allergies"), 403, "permission_denied"
    )
    created = await api.post(f"/api/patients/{patient_id}/allergies", json=_allergy())
    _assert_problem(created, 403, "permission_denied")


async def test_nurse_writes_pharmacist_reads_only(
    api: httpx.AsyncClient, caller: Caller, tag_for_cleanup: TagForCleanup, patient_id: str
) -> None:
    caller.be("nurse")
    created = await _create(api, tag_for_cleanup, patient_id, _allergy())
    caller.be("pharmacist")
    assert (await api.get(created.headers["location"])).status_code == 200
    refused = await api.post(f"/api/patients/{patient_id}/allergies", json=_allergy())
    _assert_problem(refused, 403, "permission_denied")


async def test_patient_sees_own_allergies_only(
    api: httpx.AsyncClient,
    caller: Caller,
    tag_for_cleanup: TagForCleanup,
    live_tenant_fhir: TenantFhirClient,
    test_tag: dict[str, str],
    patient_id: str,
) -> None:
    mine = await _create(api, tag_for_cleanup, patient_id, _allergy())
    other_patient = await _patient(live_tenant_fhir, test_tag)
    theirs = await _create(api, tag_for_cleanup, other_patient, _allergy())
    caller.be("patient", patient_id)
    own = await api.get(f"/api/patients/{patient_id}/allergies")
    assert own.status_code == 200, own.text
    assert [a["id"] for a in own.json()["items"]] == [mine.json()["id"]]
    _assert_problem(
        await api.get(f"/api/patients/{other_patient}/allergies"), 404, "fhir_not_found"
    )
    _assert_problem(
        await api.get(f"/api/patients/{other_patient}/allergies/{theirs.json()['id']}"),
        404,
        "fhir_not_found",
    )
    refused = await api.post(f"/api/patients/{patient_id}/allergies", json=_allergy())
    _assert_problem(refused, 403, "permission_denied")


async def test_each_access_is_one_audit_record(
    api: httpx.AsyncClient,
    tag_for_cleanup: TagForCleanup,
    db: Sessions,
    settings: Settings,
    patient_id: str,
) -> None:
    created = await _create(api, tag_for_cleanup, patient_id, _allergy())
    allergy_id = created.json()["id"]
    url = created.headers["location"]
    read = await api.get(url)
    await api.put(url, json=_allergy(), headers={"If-Match": read.headers["etag"]})
    await api.get(f"/api/patients/{patient_id}/allergies")
    await api.post(f"{url}/entered-in-error")
    async with db() as session:
        rows = list(
            await session.scalars(
                select(AuditRecord)
                .where(
                    AuditRecord.tenant == settings.fhir.default_tenant,
                    AuditRecord.patient_id == patient_id,
                    AuditRecord.action.like("allergy:%"),
                )
                .order_by(AuditRecord.occurred_at, AuditRecord.id)
            )
        )
    assert [r.action for r in rows] == [
        "allergy:create",
        "allergy:read",
        "allergy:update",
        "allergy:list",
        "allergy:entered-in-error",
    ]
    assert {r.resource_type for r in rows} == {"AllergyIntolerance"}
    assert [r.resource_id for r in rows] == [allergy_id, allergy_id, allergy_id, None, allergy_id]
    assert rows[3].details["resource_ids"] == [allergy_id]


async def test_allergy_list_pages_by_cursor(
    api: httpx.AsyncClient, tag_for_cleanup: TagForCleanup, patient_id: str
) -> None:
    for criticality in ("high", "low", "high"):
        await _create(api, tag_for_cleanup, patient_id, _allergy(criticality=criticality))
    url = f"/api/patients/{patient_id}/allergies"
    order = [a["id"] for a in (await api.get(url)).json()["items"]]
    assert len(order) == 3
    first = (await api.get(url, params={"limit": 2})).json()
    assert [a["id"] for a in first["items"]] == order[:2]
    second = (await api.get(url, params={"limit": 2, "cursor": first["next"]})).json()
    assert ([a["id"] for a in second["items"]], second["next"]) == (order[2:], None)
    other_filter = await api.get(
        url, params={"cursor": first["next"], "include_entered_in_error": "true"}
    )
    _assert_problem(other_filter, 422, "invalid_list_cursor")
