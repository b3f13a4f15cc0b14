"""The chart's summary and timeline against the real HAPI, PostgreSQL and Redis, with real
tokens of every role (support.tenant_world): sections, restricted entries, keyset paging that is
stable while new entries are recorded, and what each role may see."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from support.tenant_world import TenantWorld, World, open_world

from ehr.core.config import Settings
from ehr.fhir import TenantFhirClient
from ehr.fhir.errors import FhirConflict
from ehr.platform.auth.authorization import CONFIDENTIALITY_SYSTEM
from ehr.platform.auth.permissions import Role

pytestmark = pytest.mark.integration

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


@pytest.fixture(scope="module")
async def world(settings: Settings, run_id: str) -> AsyncIterator[World]:
    async with open_world(settings, f"{run_id}-c", ["cx", "cy"]) as made:
        yield made


def _subject(tenant: TenantWorld) -> dict[str, str]:
    return {"reference": f"Patient/{tenant.patient['id']}"}


def _when(days_ago: int) -> str:
    moment = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC) - dt.timedelta(days=days_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _observation(
    tenant: TenantWorld, category: str, code: str, value: float, days_ago: int, flag: str | None
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": LOINC, "code": code}], "text": f"loinc {code}"},
        "subject": _subject(tenant),
        "effectiveDateTime": _when(days_ago),
        "valueQuantity": {"value": value, "unit": "u", "system": "http://unitsofmeasure.org"},
    }
    if flag is not None:
        resource["interpretation"] = [{"coding": [{"system": INTERPRETATION, "code": flag}]}]
    return resource


@pytest.fixture(scope="module")
async def chart(world: World) -> AsyncIterator[dict[str, Any]]:
    """A chart: problems (one restricted), an allergy, medications, vitals, results, an order,
    an encounter, notes (one signed, one draft), an upcoming appointment and a care team."""
    tenant = world.tenants["cx"]
    fhir: TenantFhirClient = world.fhir.for_tenant(tenant.slug)
    subject = _subject(tenant)
    problem_category = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                "code": "problem-list-item",
            }
        ]
    }
    active = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active",
            }
        ]
    }
    made: dict[str, Any] = {}
    made["problem"] = await fhir.create(
        {
            "resourceType": "Condition",
            "clinicalStatus": active,
            "category": [problem_category],
            "code": {"coding": [{"system": SNOMED, "code": "44054006"}], "text": "Diabetes"},
            "subject": subject,
            "onsetDateTime": "2020-01-01",
        }
    )
    made["restricted_problem"] = await fhir.create(
        {
            "resourceType": "Condition",
            "meta": {"security": [{"system": CONFIDENTIALITY_SYSTEM, "code": "R"}]},
            "clinicalStatus": active,
            "category": [problem_category],
            "code": {"text": "A restricted problem"},
            "subject": subject,
        }
    )
    made["allergy"] = await fhir.create(
        {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                        "code": "active",
                    }
                ]
            },
            "code": {"text": "Penicillin"},
            "patient": subject,
        }
    )
    made["medication"] = await fhir.create(
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {"text": "Metformin 500 MG Oral Tablet"},
            "subject": subject,
            "authoredOn": _when(40),
        }
    )
    made["hr_old"] = await fhir.create(_observation(tenant, "vital-signs", "8867-4", 60, 30, None))
    made["hr_new"] = await fhir.create(_observation(tenant, "vital-signs", "8867-4", 72, 2, None))
    made["lab_normal"] = await fhir.create(
        _observation(tenant, "laboratory", "2345-7", 5.0, 1, "N")
    )
    made["lab_high"] = await fhir.create(_observation(tenant, "laboratory", "2823-3", 6.1, 20, "H"))
    made["order"] = await fhir.create(
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "code": {"text": "HbA1c"},
            "subject": subject,
            "authoredOn": _when(10),
        }
    )
    made["encounter"] = await fhir.create(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "AMB",
            },
            "subject": subject,
            "period": {"start": _when(5), "end": _when(5)},
        }
    )
    for key, status, days in (("note_final", "final", 4), ("note_draft", "preliminary", 3)):
        made[key] = await fhir.create(
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "docStatus": status,
                "type": {"coding": [{"system": LOINC, "code": "11506-3"}], "text": "Progress"},
                "subject": subject,
                "date": _when(days),
                "content": [{"attachment": {"contentType": "text/plain", "data": "bm90ZQ=="}}],
            }
        )
    made["appointment"] = await fhir.create(
        {
            "resourceType": "Appointment",
            "status": "booked",
            "description": "Follow-up",
            "start": (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "end": (dt.datetime.now(dt.UTC) + dt.timedelta(days=7, hours=1)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "participant": [{"actor": subject, "status": "accepted"}],
        }
    )
    made["care_team"] = await fhir.create(
        {
            "resourceType": "CareTeam",
            "status": "active",
            "name": "Diabetes team",
            "subject": subject,
        }
    )
    made["extra"] = []  # what the tests add
    yield made
    # The patient is removed with the world: what references it goes first.
    for resource in [*made.pop("extra"), *reversed(list(made.values()))]:
        try:
            await fhir.delete(resource["resourceType"], resource["id"])
        except FhirConflict:
            # HAPI answers a delete that raced its own index work with HAPI-0550 (409,
            # "version constraint failure"); the delete is safe to repeat once.
            await asyncio.sleep(1)
            await fhir.delete(resource["resourceType"], resource["id"])


def _ids(section: dict[str, Any]) -> list[str]:
    return [entry["id"] for entry in section["entries"]]


async def test_summary_shows_every_section(
    api: httpx.AsyncClient, world: World, chart: dict[str, Any]
) -> None:
    tenant = world.tenants["cx"]
    response = await api.get(
        f"/api/patients/{tenant.patient['id']}/summary", headers=tenant.auth(Role.PHYSICIAN)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    sections = body["sections"]
    assert body["patient"]["id"] == tenant.patient["id"]
    assert all(section["status"] == "ok" for section in sections.values())
    # The restricted problem is withheld without break-glass, and counted.
    assert _ids(sections["problems"]) == [chart["problem"]["id"]]
    assert sections["problems"]["withheld"] == 1
    assert _ids(sections["allergies"]) == [chart["allergy"]["id"]]
    assert _ids(sections["medications"]) == [chart["medication"]["id"]]
    # Latest vital per code only; results abnormal first, then newest.
    assert _ids(sections["vitals"]) == [chart["hr_new"]["id"]]
    assert sections["vitals"]["entries"][0]["value"] == "72 u"
    assert _ids(sections["results"]) == [chart["lab_high"]["id"], chart["lab_normal"]["id"]]
    assert sections["results"]["entries"][0]["abnormal"] is True
    assert _ids(sections["orders"]) == [chart["order"]["id"]]
    assert _ids(sections["appointments"]) == [chart["appointment"]["id"]]
    assert _ids(sections["care_team"]) == [chart["care_team"]["id"]]

    opened = await api.get(
        f"/api/patients/{tenant.patient['id']}/summary",
        headers={**tenant.auth(Role.PHYSICIAN), "X-Break-Glass-Reason": "emergency review"},
    )
    assert opened.status_code == 200
    problems = opened.json()["sections"]["problems"]
    assert sorted(_ids(problems)) == sorted(
        [chart["problem"]["id"], chart["restricted_problem"]["id"]]
    )
    assert problems["withheld"] == 0


async def test_timeline_pages_are_stable_while_entries_are_recorded(
    api: httpx.AsyncClient, world: World, chart: dict[str, Any]
) -> None:
    tenant = world.tenants["cx"]
    url = f"/api/patients/{tenant.patient['id']}/timeline"
    headers = tenant.auth(Role.PHYSICIAN)
    first = await api.get(url, params={"limit": 3}, headers=headers)
    assert first.status_code == 200, first.text
    page1 = first.json()
    assert page1["next"] is not None
    # Newest first: the lab result (1 day), the draft note (3), the signed note (4).
    assert [item["id"] for item in page1["items"]] == [
        chart["lab_normal"]["id"],
        chart["note_draft"]["id"],
        chart["note_final"]["id"],
    ]
    # A new entry recorded now (newer than everything) does not shift the next page.
    recorded = await world.fhir.for_tenant(tenant.slug).create(
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "code": {"text": "Lipid panel"},
            "subject": _subject(tenant),
            "authoredOn": _when(0),
        }
    )
    chart["extra"].append(recorded)
    second = await api.get(url, params={"limit": 3, "cursor": page1["next"]}, headers=headers)
    assert second.status_code == 200
    page2 = second.json()["items"]
    assert [item["id"] for item in page2] == [
        chart["encounter"]["id"],
        chart["order"]["id"],
        chart["lab_high"]["id"],
    ]
    assert not {i["id"] for i in page1["items"]} & {i["id"] for i in page2}
    # Filters: kind and date range.
    notes = await api.get(url, params={"kind": "note"}, headers=headers)
    assert [i["kind"] for i in notes.json()["items"]] == ["note", "note"]
    ranged = await api.get(
        url, params={"since": _when(6)[:10], "until": _when(4)[:10]}, headers=headers
    )
    assert {i["id"] for i in ranged.json()["items"]} == {
        chart["note_final"]["id"],
        chart["encounter"]["id"],
    }
    bad = await api.get(url, params={"cursor": "not-a-cursor"}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_timeline_cursor"
    # The cursor is sealed to the tenant, the patient and the filters: reused elsewhere, 422.
    other_kind = await api.get(
        url, params={"cursor": page1["next"], "kind": "note"}, headers=headers
    )
    other_tenant = world.tenants["cy"]
    elsewhere = await api.get(
        f"/api/patients/{other_tenant.patient['id']}/timeline",
        params={"cursor": page1["next"]},
        headers=other_tenant.auth(Role.PHYSICIAN),
    )
    for foreign in (other_kind, elsewhere):
        assert foreign.status_code == 422, foreign.text
        assert foreign.json()["code"] == "invalid_timeline_cursor"


async def test_each_role_gets_what_it_may_see(
    api: httpx.AsyncClient, world: World, chart: dict[str, Any]
) -> None:
    tenant = world.tenants["cx"]
    patient_id = tenant.patient["id"]
    for role in (Role.FRONT_DESK, Role.BILLING, Role.ADMIN):
        refused = await api.get(f"/api/patients/{patient_id}/summary", headers=tenant.auth(role))
        assert refused.status_code == 403, role
    nurse = await api.get(f"/api/patients/{patient_id}/summary", headers=tenant.auth(Role.NURSE))
    assert nurse.status_code == 200
    # A restricted patient's chart needs break-glass, like the patient itself.
    restricted = f"/api/patients/{tenant.restricted['id']}/summary"
    closed = await api.get(restricted, headers=tenant.auth(Role.PHYSICIAN))
    assert closed.status_code == 403
    assert closed.json()["code"] == "break_glass_required"
    opened = await api.get(
        restricted,
        headers={**tenant.auth(Role.PHYSICIAN), "X-Break-Glass-Reason": "unconscious patient"},
    )
    assert opened.status_code == 200
    # The patient sees their own chart, and in the timeline only signed notes.
    own = await api.get(
        f"/api/patients/{patient_id}/timeline",
        params={"kind": "note"},
        headers=tenant.auth(Role.PATIENT),
    )
    assert own.status_code == 200
    assert [i["id"] for i in own.json()["items"]] == [chart["note_final"]["id"]]
    other = world.tenants["cx"].restricted["id"]
    assert (
        await api.get(f"/api/patients/{other}/summary", headers=tenant.auth(Role.PATIENT))
    ).status_code == 404
    # Another tenant's physician does not find this patient.
    stranger = world.tenants["cy"]
    assert (
        await api.get(f"/api/patients/{patient_id}/summary", headers=stranger.auth(Role.PHYSICIAN))
    ).status_code == 404


async def test_recent_results_are_the_newest_twenty_whether_or_not_the_window_fills(
    api: httpx.AsyncClient, world: World, chart: dict[str, Any]
) -> None:
    """The summary looks for results in the last 90 days first and falls back to every result
    when that window holds fewer than it shows: either way the section is HAPI's newest 20."""
    tenant = world.tenants["cx"]
    fhir: TenantFhirClient = world.fhir.for_tenant(tenant.slug)
    now = dt.datetime.now(dt.UTC)
    for label, recent, old in (("dense", 23, 4), ("sparse", 3, 5)):
        patient = await fhir.create(
            {"resourceType": "Patient", "name": [{"family": f"{tenant.family}-{label}"}]}
        )
        subject = {"reference": f"Patient/{patient['id']}"}
        days = [d * 3 for d in range(recent)] + [200 + d * 30 for d in range(old)]
        entries = []
        for index, days_ago in enumerate(days):
            lab = _observation(tenant, "laboratory", "2823-3", 4.0 + index / 10, 0, None)
            lab["subject"] = subject
            moment = now - dt.timedelta(days=days_ago, hours=1)
            lab["effectiveDateTime"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
            entries.append({"resource": lab, "request": {"method": "POST", "url": "Observation"}})
        await fhir.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})
        newest = await fhir.search(
            "Observation",
            [("patient", patient["id"]), ("category", "laboratory"), ("_sort", "-date")],
            single_page=True,
        )
        expected = [e["resource"]["id"] for e in newest.get("entry", [])][:20]

        response = await api.get(
            f"/api/patients/{patient['id']}/summary", headers=tenant.auth(Role.PHYSICIAN)
        )
        assert response.status_code == 200, response.text
        results = response.json()["sections"]["results"]
        assert _ids(results) == expected, label
        assert results["complete"] is (len(days) <= 20), label
