"""/api/patients/{id}/problems against the real HAPI: create → read → update (If-Match) → stale
If-Match 412 → entered-in-error → hidden from the list; wrong patient, roles and compartment.

The caller is injected with ``dependency_overrides`` (the role is switched per test through
``caller``); real tokens and tenants are exercised by the acceptance matrix.
"""

from __future__ import annotations

import asyncio
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
from ehr.platform.auth.authorization import CONFIDENTIALITY_SYSTEM
from ehr.platform.auth.dependencies import get_current_principal
from ehr.platform.auth.principal import Principal

pytestmark = pytest.mark.integration

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
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
            "name": [{"family": f"Zzproblem{test_tag['code'].replace('-', '')}"}],
        }
    )
    return str(created["id"])


@pytest.fixture
async def patient_id(live_tenant_fhir: TenantFhirClient, test_tag: dict[str, str]) -> str:
    return await _patient(live_tenant_fhir, test_tag)


def _problem(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": {"system": ICD10, "code": "E11.9", "display": "Type 2 diabetes mellitus"},
        "clinical_status": "active",
        "verification_status": "confirmed",
        "onset": "2019-05-01",
    }
    body.update(overrides)
    return body


async def _create(
    api: httpx.AsyncClient, tag: TagForCleanup, patient_id: str, body: dict[str, Any]
) -> httpx.Response:
    response = await api.post(f"/api/patients/{patient_id}/problems", json=body)
    assert response.status_code == 201, response.text
    await tag("Condition", response.json()["id"])
    return response


def _assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == code


async def test_problem_lifecycle(
    api: httpx.AsyncClient,
    tag_for_cleanup: TagForCleanup,
    live_tenant_fhir: TenantFhirClient,
    patient_id: str,
) -> None:
    created = await _create(api, tag_for_cleanup, patient_id, _problem())
    problem = created.json()
    url = created.headers["location"]
    assert url == f"/api/patients/{patient_id}/problems/{problem['id']}"
    assert problem["clinical_status"] == "active"
    assert problem["code"] == {
        "system": ICD10,
        "code": "E11.9",
        "display": "Type 2 diabetes mellitus",
    }
    assert problem["recorder"]["display"] == "live.physician"
    assert problem["recorded_date"]
    assert created.headers["etag"] == f'W/"{problem["version"]}"'

    stored = await live_tenant_fhir.read("Condition", problem["id"])
    assert stored["subject"] == {"reference": f"Patient/{patient_id}"}
    assert stored["category"][0]["coding"][0]["code"] == "problem-list-item"
    assert stored["asserter"]["display"] == "live.physician"

    read = await api.get(url)
    assert read.status_code == 200
    assert read.json() == problem
    etag = read.headers["etag"]

    resolved = _problem(clinical_status="resolved", abatement="2024-01-15")
    updated = await api.put(url, json=resolved, headers={"If-Match": etag})
    assert updated.status_code == 200, updated.text
    assert updated.json()["clinical_status"] == "resolved"
    assert updated.json()["abatement"] == "2024-01-15"
    assert updated.json()["version"] != problem["version"]

    stale = await api.put(url, json=_problem(), headers={"If-Match": etag})
    _assert_problem(stale, 412, "fhir_precondition_failed")
    _assert_problem(await api.put(url, json=_problem()), 428, "if_match_required")

    other = await _create(
        api, tag_for_cleanup, patient_id, _problem(code={"system": SNOMED, "code": "38341003"})
    )
    listed = (await api.get(f"/api/patients/{patient_id}/problems")).json()
    # Active first: the hypertension (active) before the resolved diabetes.
    assert [p["id"] for p in listed["items"]] == [other.json()["id"], problem["id"]]
    only_resolved = await api.get(
        f"/api/patients/{patient_id}/problems", params={"clinical_status": "resolved"}
    )
    assert [p["id"] for p in only_resolved.json()["items"]] == [problem["id"]]

    gone = await api.post(f"{url}/entered-in-error")
    assert gone.status_code == 200, gone.text
    assert gone.json()["verification_status"] == "entered-in-error"
    assert gone.json()["clinical_status"] is None
    # Never a hard delete: HAPI still has it.
    assert (await live_tenant_fhir.read("Condition", problem["id"]))["id"] == problem["id"]
    listed = (await api.get(f"/api/patients/{patient_id}/problems")).json()
    assert [p["id"] for p in listed["items"]] == [other.json()["id"]]
    with_errors = await api.get(
        f"/api/patients/{patient_id}/problems", params={"include_entered_in_error": "true"}
    )
    assert {p["id"] for p in with_errors.json()["items"]} == {problem["id"], other.json()["id"]}
    after = await api.put(url, json=_problem(), headers={"If-Match": gone.headers["etag"]})
    _assert_problem(after, 409, "problem_entered_in_error")


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"patient_id": "someone-else"}, "patient_mismatch"),
        ({"code": {"system": "http://loinc.org", "code": "1234-5"}}, "unknown_code_system"),
        ({"code": {"system": ICD10, "code": "E11.99999"}}, "invalid_code"),
        ({"code": {"system": SNOMED, "code": "38341004"}}, "invalid_code"),
        ({"abatement": "2020-01-01"}, "abatement_not_allowed"),
        (
            {"clinical_status": "resolved", "abatement": "2018-01-01"},
            "abatement_before_onset",
        ),
        ({"onset": "2999-01-01"}, "date_in_future"),
        ({"verification_status": "entered-in-error"}, "validation_failed"),
        ({"extra": 1}, "validation_failed"),
    ],
)
async def test_bad_problems_are_422(
    api: httpx.AsyncClient, patient_id: str, overrides: dict[str, Any], code: str
) -> None:
    response = await api.post(f"/api/patients/{patient_id}/problems", json=_problem(**overrides))
    _assert_problem(response, 422, code)


async def test_another_patients_problem_is_not_found(
    api: httpx.AsyncClient,
    tag_for_cleanup: TagForCleanup,
    live_tenant_fhir: TenantFhirClient,
    test_tag: dict[str, str],
    patient_id: str,
) -> None:
    created = await _create(api, tag_for_cleanup, patient_id, _problem())
    other_patient = await _patient(live_tenant_fhir, test_tag)
    response = await api.get(f"/api/patients/{other_patient}/problems/{created.json()['id']}")
    _assert_problem(response, 404, "fhir_not_found")


@pytest.mark.parametrize("role", ["front_desk", "billing"])
async def test_front_desk_and_billing_are_refused(
    api: httpx.AsyncClient, caller: Caller, patient_id: str, role: str
) -> None:
    caller.be(role)
    listed = await api.get(f"/api/patients/{patient_id}/problems")
    _assert_problem(listed, 403, "permission_denied")
    created = await api.post(f"/api/patients/{patient_id}/problems", json=_problem())
    _assert_problem(created, 403, "permission_denied")


async def test_nurse_writes_pharmacist_reads_only(
    api: httpx.AsyncClient, caller: Caller, tag_for_cleanup: TagForCleanup, patient_id: str
) -> None:
    caller.be("nurse")
    created = await _create(api, tag_for_cleanup, patient_id, _problem())
    caller.be("pharmacist")
    assert (await api.get(created.headers["location"])).status_code == 200
    refused = await api.post(f"/api/patients/{patient_id}/problems", json=_problem())
    _assert_problem(refused, 403, "permission_denied")


async def test_patient_sees_own_problems_only(
    api: httpx.AsyncClient,
    caller: Caller,
    tag_for_cleanup: TagForCleanup,
    live_tenant_fhir: TenantFhirClient,
    test_tag: dict[str, str],
    patient_id: str,
) -> None:
    mine = await _create(api, tag_for_cleanup, patient_id, _problem())
    other_patient = await _patient(live_tenant_fhir, test_tag)
    theirs = await _create(api, tag_for_cleanup, other_patient, _problem())
    caller.be("patient", patient_id)
    own = await api.get(f"/api/patients/{patient_id}/problems")
    assert own.status_code == 200, own.text
    assert [p["id"] for p in own.json()["items"]] == [mine.json()["id"]]
    _assert_problem(await api.get(f"/api/patients/{other_patient}/problems"), 404, "fhir_not_found")
    _assert_problem(
        await api.get(f"/api/patients/{other_patient}/problems/{theirs.json()['id']}"),
        404,
        "fhir_not_found",
    )
    refused = await api.post(f"/api/patients/{patient_id}/problems", json=_problem())
    _assert_problem(refused, 403, "permission_denied")


async def test_each_access_is_one_audit_record(
    api: httpx.AsyncClient,
    tag_for_cleanup: TagForCleanup,
    db: Sessions,
    settings: Settings,
    patient_id: str,
) -> None:
    created = await _create(api, tag_for_cleanup, patient_id, _problem())
    problem_id = created.json()["id"]
    url = created.headers["location"]
    read = await api.get(url)
    await api.put(url, json=_problem(), headers={"If-Match": read.headers["etag"]})
    await api.get(f"/api/patients/{patient_id}/problems")
    await api.post(f"{url}/entered-in-error")
    async with db() as session:
        rows = list(
            await session.scalars(
                select(AuditRecord)
                .where(
                    AuditRecord.tenant == settings.fhir.default_tenant,
                    AuditRecord.patient_id == patient_id,
                    AuditRecord.action.like("problem:%"),
                )
                .order_by(AuditRecord.occurred_at, AuditRecord.id)
            )
        )
    assert [r.action for r in rows] == [
        "problem:create",
        "problem:read",
        "problem:update",
        "problem:list",
        "problem:entered-in-error",
    ]
    assert {r.resource_type for r in rows} == {"Condition"}
    assert [r.resource_id for r in rows] == [problem_id, problem_id, problem_id, None, problem_id]
    assert rows[3].details["resource_ids"] == [problem_id]


async def test_concurrent_updates_with_one_version_exactly_one_wins(
    api: httpx.AsyncClient, tag_for_cleanup: TagForCleanup, patient_id: str
) -> None:
    created = await _create(api, tag_for_cleanup, patient_id, _problem())
    url = created.headers["location"]
    etag = created.headers["etag"]
    answers = await asyncio.gather(
        *(
            api.put(url, json=_problem(text=f"writer {n}"), headers={"If-Match": etag})
            for n in range(4)
        )
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 412, 412, 412], [a.text for a in answers]
    winner = next(a for a in answers if a.status_code == 200).json()
    assert (await api.get(url)).json() == winner


async def test_restricted_patient_needs_break_glass(
    api: httpx.AsyncClient,
    tag_for_cleanup: TagForCleanup,
    live_tenant_fhir: TenantFhirClient,
    test_tag: dict[str, str],
) -> None:
    restricted = await live_tenant_fhir.create(
        {
            "resourceType": "Patient",
            "meta": {
                "tag": [test_tag],
                "security": [{"system": CONFIDENTIALITY_SYSTEM, "code": "R"}],
            },
            "name": [{"family": f"Zzproblemvip{test_tag['code'].replace('-', '')}"}],
        }
    )
    url = f"/api/patients/{restricted['id']}/problems"
    _assert_problem(await api.get(url), 403, "break_glass_required")
    _assert_problem(await api.post(url, json=_problem()), 403, "break_glass_required")
    glass = {"X-Break-Glass-Reason": "Unconscious patient in the emergency department"}
    created = await api.post(url, json=_problem(), headers=glass)
    assert created.status_code == 201, created.text
    await tag_for_cleanup("Condition", created.json()["id"])
    listed = await api.get(url, headers=glass)
    assert [p["id"] for p in listed.json()["items"]] == [created.json()["id"]]


async def test_problem_list_pages_by_cursor(
    api: httpx.AsyncClient, tag_for_cleanup: TagForCleanup, patient_id: str
) -> None:
    codes = ["E11.9", "I10", "J45.909", "E78.5", "K21.9"]
    for code in codes:
        await _create(
            api, tag_for_cleanup, patient_id, _problem(code={"system": ICD10, "code": code})
        )
    url = f"/api/patients/{patient_id}/problems"
    whole = await api.get(url)
    assert whole.status_code == 200, whole.text
    assert whole.json()["next"] is None
    order = [p["id"] for p in whole.json()["items"]]
    assert len(order) == 5

    first = await api.get(url, params={"limit": 2})
    assert first.status_code == 200, first.text
    assert [p["id"] for p in first.json()["items"]] == order[:2]
    cursor = first.json()["next"]
    assert cursor
    # Recorded meanwhile: a fresh first page shows it, the open cursor's pages do not shift.
    await _create(
        api, tag_for_cleanup, patient_id, _problem(code={"system": ICD10, "code": "N18.3"})
    )
    second = await api.get(url, params={"limit": 2, "cursor": cursor})
    assert [p["id"] for p in second.json()["items"]] == order[2:4]
    third = await api.get(url, params={"limit": 2, "cursor": second.json()["next"]})
    assert [p["id"] for p in third.json()["items"]] == order[4:]
    assert third.json()["next"] is None

    # A cursor is sealed to its list's filters (and patient, and tenant).
    other_filter = await api.get(
        url, params={"limit": 2, "cursor": cursor, "clinical_status": "resolved"}
    )
    _assert_problem(other_filter, 422, "invalid_list_cursor")
    _assert_problem(await api.get(url, params={"cursor": "bad.cursor"}), 422, "invalid_list_cursor")
    assert (await api.get(url, params={"limit": 201})).status_code == 422
