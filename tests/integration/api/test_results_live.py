"""/api/patients/{id}/results, /trends, /api/critical-results and /api/result-policy against
the real HAPI and PostgreSQL: a lab order → a critical potassium (one transaction: report,
results, acknowledgement Task, the order completed) → the unit's worklist → acknowledgement (a
second one is 409) → the portal sees it → trend; refusals (missing, revoked, another patient's
order; LOINC typo; a unit of the wrong kind); the roles; the tenant's overrides.

The caller is injected with ``dependency_overrides`` (``caller.be(role)``); real tokens and
tenants are exercised by the acceptance matrix. What this module creates is deleted at its end,
referrers first (Task, DiagnosticReport, Observation, ServiceRequest, Location), before the
session's tag clean-up removes the patients.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from support.database import Sessions
from support.hapi_data import delete_with_retries
from support.tenants import MakeTenant

from ehr.core.config import Settings
from ehr.core.db.models import AuditRecord
from ehr.core.error_handlers import PROBLEM_JSON
from ehr.fhir import FhirClient, TenantFhirClient
from ehr.platform.auth.dependencies import get_current_principal
from ehr.platform.auth.principal import Principal

pytestmark = pytest.mark.integration

LOINC = "http://loinc.org"
DELETE_ORDER = ("Task", "DiagnosticReport", "Observation", "ServiceRequest", "Location")


class Caller:
    """The principal the app sees; tests switch its role."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.principal = self.make("lab_technician")

    def make(
        self, role: str, patient_id: str | None = None, tenant_id: uuid.UUID | None = None
    ) -> Principal:
        return Principal(
            kind="user",
            subject=uuid.uuid4(),
            tenant=self.tenant,
            tenant_id=tenant_id or uuid.uuid4(),
            roles=frozenset({role}),
            username=f"live.{role}",
            patient_id=patient_id,
        )

    def be(
        self, role: str, patient_id: str | None = None, tenant_id: uuid.UUID | None = None
    ) -> None:
        self.principal = self.make(role, patient_id, tenant_id)


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
def as_lab(caller: Caller) -> None:
    caller.be("lab_technician")


Created = dict[str, set[str]]


@pytest.fixture(scope="module")
async def created(live_fhir: FhirClient) -> AsyncIterator[Created]:
    """What this module made in HAPI, by type; deleted referrers first at the module's end."""
    made: Created = {kind: set() for kind in DELETE_ORDER}
    yield made
    tenant = live_fhir.for_tenant(live_fhir.default_tenant)
    for kind in DELETE_ORDER:
        for resource_id in sorted(made[kind]):
            # A Task the concurrent-acknowledgement test raced on can still be settling in HAPI
            # (HAPI-0550 version conflict): retried with backoff, not left behind.
            await delete_with_retries(tenant, kind, resource_id)


async def _patient(fhir: TenantFhirClient, test_tag: dict[str, str]) -> str:
    stored = await fhir.create(
        {
            "resourceType": "Patient",
            "meta": {"tag": [test_tag]},
            "name": [{"family": f"Zzresult{test_tag['code'].replace('-', '')}"}],
        }
    )
    return str(stored["id"])


@pytest.fixture
async def patient_id(live_tenant_fhir: TenantFhirClient, test_tag: dict[str, str]) -> str:
    return await _patient(live_tenant_fhir, test_tag)


@pytest.fixture(scope="module")
async def ward(live_fhir: FhirClient, created: Created, test_tag: dict[str, str]) -> str:
    tenant = live_fhir.for_tenant(live_fhir.default_tenant)
    stored = await tenant.create(
        {"resourceType": "Location", "meta": {"tag": [test_tag]}, "name": "Ward 3 (live test)"}
    )
    created["Location"].add(str(stored["id"]))
    return str(stored["id"])


async def _order(
    fhir: TenantFhirClient,
    created: Created,
    patient_id: str,
    *,
    status: str = "active",
    location_id: str | None = None,
) -> str:
    order: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": status,
        "intent": "order",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "108252007"}]}],
        "code": {"coding": [{"system": LOINC, "code": "24323-8", "display": "CMP"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "requester": {"identifier": {"system": "urn:ehr:user", "value": "dr"}, "display": "dr.x"},
    }
    if location_id is not None:
        order["locationReference"] = [{"reference": f"Location/{location_id}"}]
    stored = await fhir.create(order)
    created["ServiceRequest"].add(str(stored["id"]))
    return str(stored["id"])


def _body(order_id: str | None, potassium: float, **extra: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "code": "24323-8",
        "display": "Comprehensive metabolic panel",
        "effective": "2026-12-07T06:30:00Z",
        "observations": [
            {
                "code": "2823-3",
                "display": "Potassium",
                "quantity": {"value": potassium, "unit": "mmol/L"},
                "reference_range": {"low": 3.5, "high": 5.1},
            },
            {
                "code": "2951-2",
                "display": "Sodium",
                "quantity": {"value": 139, "unit": "mmol/L"},
                "reference_range": {"low": 136, "high": 145},
            },
        ],
        **extra,
    }


def _remember(created: Created, report: dict[str, Any]) -> None:
    created["DiagnosticReport"].add(report["id"])
    created["Observation"].update(o["id"] for o in report["observations"])
    if report.get("acknowledgement"):
        created["Task"].add(report["acknowledgement"]["task_id"])


async def _record(
    api: httpx.AsyncClient, created: Created, patient_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await api.post(f"/api/patients/{patient_id}/results", json=body)
    assert response.status_code == 201, response.text
    report: dict[str, Any] = response.json()
    _remember(created, report)
    return report


def _code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    return str(response.json()["code"])


async def _audited(db: Sessions, resource_id: str) -> set[str]:
    async with db() as session:
        rows = await session.scalars(
            select(AuditRecord.action).where(AuditRecord.resource_id == resource_id)
        )
        return set(rows)


async def test_critical_potassium_from_order_to_acknowledgement_and_trend(
    api: httpx.AsyncClient,
    caller: Caller,
    db: Sessions,
    created: Created,
    live_tenant_fhir: TenantFhirClient,
    patient_id: str,
    ward: str,
) -> None:
    order_id = await _order(live_tenant_fhir, created, patient_id, location_id=ward)
    report = await _record(api, created, patient_id, _body(order_id, 6.9))
    assert report["critical"] is True
    assert report["status"] == "final"
    assert report["order_id"] == order_id
    flags = {o["code"]: (o["interpretation"], o["critical"]) for o in report["observations"]}
    assert flags == {"2823-3": ("HH", True), "2951-2": ("N", False)}
    ack = report["acknowledgement"]
    assert ack["status"] == "requested"
    assert ack["escalated"] is False

    # One transaction: the order is completed, the Task points at the report and the patient.
    order = await live_tenant_fhir.read("ServiceRequest", order_id)
    assert order["status"] == "completed"
    task = await live_tenant_fhir.read("Task", ack["task_id"])
    assert task["focus"] == {"reference": f"DiagnosticReport/{report['id']}"}
    assert task["for"] == {"reference": f"Patient/{patient_id}"}
    assert (task["priority"], task["location"]) == ("stat", {"reference": f"Location/{ward}"})
    assert task["owner"]["display"] == "dr.x"
    stored = await live_tenant_fhir.read("DiagnosticReport", report["id"])
    assert stored["basedOn"] == [{"reference": f"ServiceRequest/{order_id}"}]

    # The unit's worklist shows it; the portal does not yet (a critical result waits for a
    # clinician's acknowledgement first).
    caller.be("nurse")
    worklist = await api.get("/api/critical-results", params={"location": ward})
    assert worklist.status_code == 200, worklist.text
    assert [i["report_id"] for i in worklist.json()["items"]] == [report["id"]]
    assert worklist.json()["escalation_minutes"] == 60
    caller.be("patient", patient_id=patient_id)
    assert (await api.get(f"/api/patients/{patient_id}/results")).json()["items"] == []
    assert (await api.get(f"/api/patients/{patient_id}/results/{report['id']}")).status_code == 404
    assert _code(await api.get("/api/critical-results"), 403) == "permission_denied"

    caller.be("nurse")
    url = f"/api/patients/{patient_id}/results/{report['id']}"
    done = await api.post(f"{url}/acknowledge", json={"comment": "Read back; Dr X informed"})
    assert done.status_code == 200, done.text
    shown = done.json()["acknowledgement"]
    assert shown["status"] == "completed"
    assert shown["acknowledged_by"] == "live.nurse"
    assert shown["comment"] == "Read back; Dr X informed"
    assert shown["acknowledged_at"]
    again = await api.post(f"{url}/acknowledge", json={})
    assert _code(again, 409) == "already_acknowledged"
    worklist = await api.get("/api/critical-results", params={"location": ward})
    assert worklist.json()["items"] == []
    everything = await api.get(
        "/api/critical-results", params={"location": ward, "unacknowledged": "false"}
    )
    assert [i["acknowledgement"]["status"] for i in everything.json()["items"]] == ["completed"]

    caller.be("physician")
    read = await api.get(url)
    assert read.status_code == 200
    assert read.headers["etag"] == f'W/"{read.json()["version"]}"'
    assert read.json()["acknowledgement"]["status"] == "completed"

    caller.be("patient", patient_id=patient_id)
    listed = await api.get(f"/api/patients/{patient_id}/results")
    assert [r["id"] for r in listed.json()["items"]] == [report["id"]]
    series = await api.get(f"/api/patients/{patient_id}/trends/2823-3")
    assert series.status_code == 200, series.text
    points = series.json()["points"]
    assert [(p["value"], p["interpretation"]) for p in points] == [(6.9, "HH")]
    assert series.json()["unit"] == "mmol/L"

    # The chart shows it: the summary's results section (abnormal first) and the timeline.
    caller.be("physician")
    summary = (await api.get(f"/api/patients/{patient_id}/summary")).json()
    results = summary["sections"]["results"]
    assert results["entries"][0]["interpretation"] == "HH"
    timeline = (await api.get(f"/api/patients/{patient_id}/timeline")).json()
    assert ("DiagnosticReport", report["id"]) in {
        (i["resource_type"], i["id"]) for i in timeline["items"]
    }

    actions = await _audited(db, report["id"])
    assert {"result:record", "result:read", "result:acknowledge"} <= actions


async def test_orders_that_cannot_take_results(
    api: httpx.AsyncClient,
    created: Created,
    live_tenant_fhir: TenantFhirClient,
    test_tag: dict[str, str],
    patient_id: str,
) -> None:
    path = f"/api/patients/{patient_id}/results"
    missing = await api.post(path, json=_body("does-not-exist-1", 4.0))
    assert _code(missing, 422) == "order_not_found"
    other = await _patient(live_tenant_fhir, test_tag)
    others_order = await _order(live_tenant_fhir, created, other)
    assert _code(await api.post(path, json=_body(others_order, 4.0)), 422) == "order_not_found"
    revoked = await _order(live_tenant_fhir, created, patient_id, status="revoked")
    refused = await api.post(path, json=_body(revoked, 4.0))
    assert _code(refused, 409) == "order_not_active"
    assert refused.json()["order_status"] == "revoked"

    typo = _body(None, 4.0)
    typo["observations"][0]["code"] = "2823-4"
    assert _code(await api.post(path, json=typo), 422) == "invalid_code"
    wrong_unit = _body(None, 18.0)
    wrong_unit["observations"][0]["quantity"]["unit"] = "mg/dL"
    assert _code(await api.post(path, json=wrong_unit), 422) == "unit_not_allowed"
    not_ucum = _body(None, 4.0)
    not_ucum["observations"][0]["quantity"]["unit"] = "mEq/L"
    assert _code(await api.post(path, json=not_ucum), 422) == "unit_not_allowed"

    nowhere = _body(None, 4.0, location_id="no-such-ward-1")
    assert _code(await api.post(path, json=nowhere), 422) == "location_not_found"

    # A preliminary report leaves the order active; the final one completes it.
    order_id = await _order(live_tenant_fhir, created, patient_id)
    first = await _record(api, created, patient_id, _body(order_id, 4.2, status="preliminary"))
    assert first["critical"] is False
    assert first["acknowledgement"] is None
    assert (await live_tenant_fhir.read("ServiceRequest", order_id))["status"] == "active"
    await _record(api, created, patient_id, _body(order_id, 4.3))
    assert (await live_tenant_fhir.read("ServiceRequest", order_id))["status"] == "completed"
    late = await api.post(path, json=_body(order_id, 4.4))
    assert _code(late, 409) == "order_not_active"


async def test_roles(
    api: httpx.AsyncClient,
    caller: Caller,
    created: Created,
    patient_id: str,
    live_tenant_fhir: TenantFhirClient,
    test_tag: dict[str, str],
) -> None:
    report = await _record(api, created, patient_id, _body(None, 2.1))
    assert report["observations"][0]["interpretation"] == "LL"
    url = f"/api/patients/{patient_id}/results"
    assert (await api.get(url)).status_code == 200  # the lab reads back what it entered
    assert (await api.post(f"{url}/{report['id']}/acknowledge", json={})).status_code == 403
    for role in ("front_desk", "billing"):
        caller.be(role)
        assert (await api.get(url)).status_code == 403
        assert (await api.get(f"{url}/{report['id']}")).status_code == 403
        assert (await api.post(url, json=_body(None, 4.0))).status_code == 403
        assert (await api.post(f"{url}/{report['id']}/acknowledge", json={})).status_code == 403
        assert (await api.get(f"/api/patients/{patient_id}/trends/2823-3")).status_code == 403
        assert (await api.get("/api/critical-results")).status_code == 403
        assert (await api.get("/api/result-policy")).status_code == 403
    for role in ("nurse", "physician"):
        caller.be(role)
        assert (await api.post(url, json=_body(None, 4.0))).status_code == 403
    caller.be("physician")
    no_task = await _record_as_lab(api, caller, created, patient_id)
    caller.be("physician")
    refused = await api.post(f"{url}/{no_task}/acknowledge", json={})
    assert _code(refused, 404) == "no_critical_result"
    other = await _patient(live_tenant_fhir, test_tag)
    caller.be("patient", patient_id=other)
    assert (await api.get(url)).status_code == 404
    assert (await api.get(f"/api/patients/{patient_id}/trends/2823-3")).status_code == 404


async def _record_as_lab(
    api: httpx.AsyncClient, caller: Caller, created: Created, patient_id: str
) -> str:
    caller.be("lab_technician")
    report = await _record(api, created, patient_id, _body(None, 4.0))
    return str(report["id"])


async def test_trend_normalises_units_and_pages_the_list(
    api: httpx.AsyncClient, caller: Caller, created: Created, patient_id: str
) -> None:
    for day, (value, unit) in enumerate([(13.1, "g/dL"), (118, "g/L"), (6.5, "g/dL")], 1):
        await _record(
            api,
            created,
            patient_id,
            {
                "code": "58410-2",
                "effective": f"2026-11-0{day}T08:00:00Z",
                "observations": [
                    {"code": "718-7", "quantity": {"value": value, "unit": unit}},
                    {"code": "777-3", "quantity": {"value": 250, "unit": "10*3/uL"}},
                ],
            },
        )
    caller.be("physician")
    series = await api.get(f"/api/patients/{patient_id}/trends/718-7")
    assert series.status_code == 200, series.text
    body = series.json()
    assert body["unit"] == "g/dL"
    assert [(p["value"], p["original_unit"]) for p in body["points"]] == [
        (13.1, "g/dL"),
        (11.8, "g/L"),
        (6.5, "g/dL"),
    ]
    assert body["points"][-1]["interpretation"] == "LL"
    in_g_l = await api.get(
        f"/api/patients/{patient_id}/trends/718-7",
        params={"unit": "g/L", "since": "2026-11-02", "until": "2026-11-02"},
    )
    assert [p["value"] for p in in_g_l.json()["points"]] == [118]
    platelets = await api.get(f"/api/patients/{patient_id}/trends/777-3")
    assert platelets.json()["unit"] == "10*9/L"
    assert {p["value"] for p in platelets.json()["points"]} == {250}
    bad_unit = await api.get(f"/api/patients/{patient_id}/trends/718-7", params={"unit": "xyz"})
    assert _code(bad_unit, 422) == "unit_not_allowed"

    url = f"/api/patients/{patient_id}/results"
    first = await api.get(url, params={"limit": 2, "code": "58410-2"})
    assert first.status_code == 200, first.text
    days = [r["effective"][:10] for r in first.json()["items"]]
    assert days == ["2026-11-03", "2026-11-02"]
    second = await api.get(
        url, params={"limit": 2, "code": "58410-2", "cursor": first.json()["next"]}
    )
    assert [r["effective"][:10] for r in second.json()["items"]] == ["2026-11-01"]
    assert second.json()["next"] is None
    foreign = await api.get(url, params={"limit": 2, "cursor": first.json()["next"]})
    assert _code(foreign, 422) == "invalid_list_cursor"


async def test_tenant_overrides_and_policy_admin(
    api: httpx.AsyncClient,
    caller: Caller,
    db: Sessions,
    make_tenant: MakeTenant,
    created: Created,
    patient_id: str,
) -> None:
    tenant = await make_tenant()
    caller.be("admin", tenant_id=tenant.id)
    default = await api.get("/api/result-policy")
    assert default.status_code == 200, default.text
    table = {row["loinc"]: row for row in default.json()["critical_values"]}
    assert (table["2823-3"]["low"], table["2823-3"]["high"]) == (2.8, 6.2)
    assert "JAMA" in table["2823-3"]["citation"]
    assert default.json()["is_default"] is True

    policy = {
        "escalation_minutes": 30,
        "patient_release_hours": 0,
        "critical_overrides": [{"loinc": "2823-3", "unit": "mmol/L", "low": 3.0, "high": 5.8}],
    }
    saved = await api.put("/api/result-policy", json=policy)
    assert saved.status_code == 200, saved.text
    assert saved.json()["escalation_minutes"] == 30
    assert saved.json()["critical_overrides"][0]["source"] == "tenant"
    bad = {**policy, "critical_overrides": [{"loinc": "2823-3", "unit": "mg/dL", "high": 20}]}
    assert _code(await api.put("/api/result-policy", json=bad), 422) == "unit_not_allowed"
    caller.be("physician", tenant_id=tenant.id)
    assert (await api.put("/api/result-policy", json=policy)).status_code == 403

    caller.be("lab_technician", tenant_id=tenant.id)
    report = await _record(api, created, patient_id, _body(None, 6.0))
    assert report["observations"][0]["interpretation"] == "HH"
    assert report["critical"] is True
    caller.be("lab_technician")  # another tenant row: the shipped table
    plain = await _record(api, created, patient_id, _body(None, 6.0))
    assert plain["observations"][0]["interpretation"] == "H"

    # A release delay keeps a fresh final report from the portal (the tenant's own rows only).
    caller.be("admin", tenant_id=tenant.id)
    delayed = {**policy, "patient_release_hours": 24}
    assert (await api.put("/api/result-policy", json=delayed)).status_code == 200
    caller.be("patient", patient_id=patient_id, tenant_id=tenant.id)
    url = f"/api/patients/{patient_id}/results/{plain['id']}"
    assert (await api.get(url)).status_code == 404
    caller.be("patient", patient_id=patient_id)
    assert (await api.get(url)).status_code == 200

    async with db() as session:
        actions = set(
            await session.scalars(
                select(AuditRecord.action).where(AuditRecord.action == "result_policy:update")
            )
        )
    assert actions == {"result_policy:update"}


async def test_two_clinicians_acknowledging_at_once_exactly_one_wins(
    api: httpx.AsyncClient, caller: Caller, created: Created, patient_id: str
) -> None:
    report = await _record(api, created, patient_id, _body(None, 1.9))
    url = f"/api/patients/{patient_id}/results/{report['id']}/acknowledge"
    caller.be("nurse")
    answers = await asyncio.gather(
        *(api.post(url, json={"comment": f"nurse {n}"}) for n in range(3))
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 409, 409], [a.text for a in answers]
    assert {_code(a, 409) for a in answers if a.status_code == 409} == {"already_acknowledged"}
    caller.be("physician")
    read = await api.get(f"/api/patients/{patient_id}/results/{report['id']}")
    winner = next(a for a in answers if a.status_code == 200).json()
    assert read.json()["acknowledgement"]["comment"] == winner["acknowledgement"]["comment"]
