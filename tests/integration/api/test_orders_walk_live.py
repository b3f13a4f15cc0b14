"""Issue 15's acceptance walk against the real HAPI, PostgreSQL and Redis, with real tokens of
every role: a lab + medication order set → signing (the lab signs; the medication interacts with
the patient's warfarin: blocked, then overridden with a reason) → a critical potassium recorded
by the lab → the unit's worklist → acknowledgement → the trend; the chart's summary and timeline
show each step; nurse, lab technician and front desk get exactly what their roles may do and see.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support.hapi_data import delete_resources
from support.tenant_world import TenantWorld, World, open_world

from ehr.core.config import Settings
from ehr.core.db.models import EventOutbox
from ehr.core.error_handlers import PROBLEM_JSON
from ehr.fhir import TenantFhirClient, bundle_resources
from ehr.platform.auth.permissions import Role

pytestmark = pytest.mark.integration

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
POTASSIUM = "2823-3"
WARFARIN_5MG_TABLET = "855332"
IBUPROFEN_600MG_TABLET = "197806"
# Referrers of the orders, deleted before the world removes orders, patients and the tenant.
WALK_TYPES = ("Provenance", "DetectedIssue", "Task", "DiagnosticReport", "Observation")


@pytest.fixture(scope="module")
async def world(settings: Settings, run_id: str) -> AsyncIterator[World]:
    async with open_world(settings, f"{run_id}-w", ["ow"]) as made:
        try:
            yield made
        finally:
            for tenant in made.tenants.values():
                await delete_resources(made.fhir.for_tenant(tenant.slug), order=WALK_TYPES)
                await delete_resources(
                    made.fhir.for_tenant(tenant.slug),
                    order=("RequestGroup", "ServiceRequest", "MedicationRequest", "PlanDefinition"),
                )


def _refused(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    if code is not None:
        assert body["code"] == code, response.text
    return body


def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _set_definition() -> dict[str, Any]:
    return {
        "key": "anticoagulated-pain",
        "title": "Pain relief on anticoagulation (walk)",
        "members": [
            {
                "key": "k",
                "order": {
                    "kind": "lab",
                    "code": {"system": LOINC, "code": POTASSIUM, "display": "Potassium"},
                },
            },
            {
                "key": "nsaid",
                "order": {
                    "kind": "medication",
                    "medication": {
                        "system": RXNORM,
                        "code": IBUPROFEN_600MG_TABLET,
                        "display": "ibuprofen 600 MG Oral Tablet",
                    },
                    "dosage": {
                        "dose": {"value": 600, "unit": "mg"},
                        "route": {"system": SNOMED, "code": "26643006", "display": "Oral"},
                        "frequency": 3,
                        "period": 1,
                        "period_unit": "d",
                    },
                    "dispense": {"quantity": {"value": 30, "unit": "{tbl}"}, "supply_days": 10},
                    "repeats": 0,
                },
            },
        ],
        "sources": [{"citation": "Acceptance walk of the orders issue (test data)"}],
    }


def _critical_potassium(order_id: str) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "code": "24323-8",
        "display": "Comprehensive metabolic panel",
        "effective": "2026-12-07T06:30:00Z",
        "observations": [
            {
                "code": POTASSIUM,
                "display": "Potassium",
                "quantity": {"value": 6.9, "unit": "mmol/L"},
                "reference_range": {"low": 3.5, "high": 5.1},
            }
        ],
    }


async def _on_warfarin(fhir: TenantFhirClient, patient_id: str) -> None:
    await fhir.create(
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "subject": {"reference": f"Patient/{patient_id}"},
            "medicationCodeableConcept": {
                "coding": [{"system": RXNORM, "code": WARFARIN_5MG_TABLET}],
                "text": "warfarin 5 MG Oral Tablet",
            },
        }
    )


async def _etag(api: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict[str, str]:
    read = await api.get(url, headers=headers)
    assert read.status_code == 200, read.text
    return {**headers, "If-Match": read.headers["etag"]}


async def test_order_set_to_signed_orders_to_acknowledged_critical_result(
    api: httpx.AsyncClient, world: World
) -> None:
    tenant: TenantWorld = world.tenants["ow"]
    fhir = world.fhir.for_tenant(tenant.slug)
    patient_id = str(tenant.patient["id"])
    doctor, nurse = tenant.auth(Role.PHYSICIAN), tenant.auth(Role.NURSE)
    lab, desk = tenant.auth(Role.LAB_TECHNICIAN), tenant.auth(Role.FRONT_DESK)
    await _on_warfarin(fhir, patient_id)

    # 1. The tenant's order set (an administrator's), instantiated by the physician: one
    #    RequestGroup and its two drafts. Neither the lab nor the front desk may instantiate.
    definition = _ok(
        await api.post("/api/order-sets", json=_set_definition(), headers=tenant.auth(Role.ADMIN)),
        201,
    )
    instantiate = f"/api/patients/{patient_id}/order-sets/{definition['id']}/instantiate"
    for refused in (lab, desk):
        _refused(await api.post(instantiate, json={}, headers=refused), 403)
    made = _ok(await api.post(instantiate, json={}, headers=doctor), 201)
    members = {order["member"]: order for order in made["orders"]}
    assert set(members) == {"k", "nsaid"}
    group = await fhir.read("RequestGroup", made["request_group_id"])
    assert group["status"] == "draft"
    orders = f"/api/patients/{patient_id}/orders"
    lab_order = f"{orders}/ServiceRequest-{members['k']['id']}"
    med_order = f"{orders}/MedicationRequest-{members['nsaid']['id']}"

    # 2. Signing. The lab order signs clean. The ibuprofen interacts with the warfarin: the nurse
    #    may not sign a medication order at all; the physician is blocked, then signs with a
    #    reason, recorded as a DetectedIssue.
    signed_lab = _ok(
        await api.post(f"{lab_order}/sign", json={}, headers=await _etag(api, lab_order, doctor))
    )
    assert signed_lab["order"]["status"] == "active"
    assert signed_lab["findings"] == []
    _refused(
        await api.post(f"{med_order}/sign", json={}, headers=await _etag(api, med_order, nurse)),
        403,
    )
    blocked = _refused(
        await api.post(f"{med_order}/sign", json={}, headers=await _etag(api, med_order, doctor)),
        409,
        "order-sign-blocked",
    )
    assert any(f["display"] == "interruptive" for f in blocked["findings"]), blocked
    reason = "Three days only; INR rechecked on day 3"
    signed_med = _ok(
        await api.post(
            f"{med_order}/sign",
            json={"override": {"reason": reason}},
            headers=await _etag(api, med_order, doctor),
        )
    )
    assert signed_med["order"]["status"] == "active"
    issues = await fhir.search("DetectedIssue", [("patient", patient_id)])
    recorded = list(bundle_resources(issues, "DetectedIssue"))
    assert recorded
    assert all(i["mitigation"][0]["action"]["text"] == reason for i in recorded)

    # 3. The laboratory reports a critical potassium for the signed lab order (the order is
    #    completed in the same transaction). Only the lab records results; it signs nothing.
    results = f"/api/patients/{patient_id}/results"
    for refused in (doctor, nurse, desk):
        _refused(
            await api.post(results, json=_critical_potassium(members["k"]["id"]), headers=refused),
            403,
        )
    _refused(await api.post(f"{lab_order}/hold", json={"reason": "x"}, headers=lab), 403)
    report = _ok(
        await api.post(
            results, json=_critical_potassium(f"ServiceRequest-{members['k']['id']}"), headers=lab
        ),
        201,
    )
    assert report["critical"] is True
    (potassium,) = report["observations"]
    assert potassium["interpretation"] == "HH"
    assert report["acknowledgement"]["status"] == "requested"
    assert _ok(await api.get(lab_order, headers=doctor))["status"] == "completed"

    # 4. The worklist shows it to the nurse (never to the lab or the front desk) until she
    #    acknowledges it; a second acknowledgement is refused.
    for refused in (lab, desk):
        _refused(await api.get("/api/critical-results", headers=refused), 403)
    worklist = _ok(await api.get("/api/critical-results", headers=nurse))
    assert report["id"] in [item["report_id"] for item in worklist["items"]]
    acknowledge = f"{results}/{report['id']}/acknowledge"
    _refused(await api.post(acknowledge, json={}, headers=lab), 403)
    done = _ok(
        await api.post(acknowledge, json={"comment": "Read back; Dr informed"}, headers=nurse)
    )
    assert done["acknowledgement"]["status"] == "completed"
    assert done["acknowledgement"]["comment"] == "Read back; Dr informed"
    _refused(await api.post(acknowledge, json={}, headers=doctor), 409, "already_acknowledged")
    worklist = _ok(await api.get("/api/critical-results", headers=nurse))
    assert report["id"] not in [item["report_id"] for item in worklist["items"]]

    # 5. The trend of potassium has the point, in one unit, flagged critical.
    trend = _ok(await api.get(f"/api/patients/{patient_id}/trends/{POTASSIUM}", headers=doctor))
    assert [(p["value"], p["critical"]) for p in trend["points"]] == [(6.9, True)]

    # 6. The chart shows each step: the signed ibuprofen among the medications, the potassium
    #    first among the results (abnormal), the orders and the result in the timeline.
    summary = _ok(await api.get(f"/api/patients/{patient_id}/summary", headers=doctor))
    sections = summary["sections"]
    assert members["nsaid"]["id"] in [e["id"] for e in sections["medications"]["entries"]]
    first_result = sections["results"]["entries"][0]
    assert (first_result["id"], first_result["abnormal"]) == (potassium["id"], True)
    assert members["k"]["id"] not in [e["id"] for e in sections["orders"]["entries"]]  # completed
    timeline = _ok(await api.get(f"/api/patients/{patient_id}/timeline", headers=nurse))
    shown = {(item["resource_type"], item["id"]) for item in timeline["items"]}
    assert ("ServiceRequest", members["k"]["id"]) in shown
    assert ("MedicationRequest", members["nsaid"]["id"]) in shown
    assert ("Observation", potassium["id"]) in shown or ("DiagnosticReport", report["id"]) in shown

    # 7. Each step left its domain event in the outbox, in the request's transaction: ids and
    #    codes only, bound to the tenant and the patient (the relay takes them to Redis).
    async with world.sessionmaker() as session:
        rows = (
            await session.scalars(
                select(EventOutbox)
                .where(EventOutbox.tenant == tenant.slug)
                .order_by(EventOutbox.id)
            )
        ).all()
    emitted = [(row.type, row.payload["resource"]) for row in rows]
    assert ("order.signed", f"ServiceRequest/{members['k']['id']}") in emitted
    assert ("order.signed", f"MedicationRequest/{members['nsaid']['id']}") in emitted
    report_ref = f"DiagnosticReport/{report['id']}"
    for kind in ("result.recorded", "result.critical", "result.acknowledged"):
        assert (kind, report_ref) in emitted, kind
    assert {row.payload["subject"] for row in rows} == {f"Patient/{patient_id}"}

    # 8. What each role sees: the nurse the chart and the orders; the lab technician the orders
    #    and the results but no chart; the front desk none of it.
    assert (await api.get(orders, headers=nurse)).status_code == 200
    assert (await api.get(orders, headers=lab)).status_code == 200
    assert (await api.get(results, headers=lab)).status_code == 200
    _refused(await api.get(f"/api/patients/{patient_id}/summary", headers=lab), 403)
    for url in (
        orders,
        results,
        f"/api/patients/{patient_id}/summary",
        f"/api/patients/{patient_id}/timeline",
        f"/api/patients/{patient_id}/trends/{POTASSIUM}",
    ):
        _refused(await api.get(url, headers=desk), 403)
    assert (await api.get(f"/api/patients/{patient_id}", headers=desk)).status_code == 200
