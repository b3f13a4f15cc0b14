"""The acceptance walk of the clinical chart (issue 14) on the real HAPI, PostgreSQL and Redis with
real tokens: a physician starts an encounter, a nurse records vitals, the physician records a
problem and an allergy, writes and signs a note, amends it, and discharges; the summary and the
timeline show each step. The same chart as nurse, front desk and patient gives exactly what those
roles may see."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from support.hapi_data import CLEANUP_ORDER
from support.tenant_world import World, open_world

from ehr.core.config import Settings
from ehr.fhir import TenantFhirClient
from ehr.fhir.errors import FhirConflict
from ehr.platform.auth.permissions import Role

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def world(settings: Settings, run_id: str) -> AsyncIterator[World]:
    async with open_world(settings, f"{run_id}-w", ["wk"]) as made:
        yield made
        await _delete_chart(made.fhir.for_tenant(made.tenants["wk"].slug))


async def _delete_chart(fhir: TenantFhirClient) -> None:
    """Everything the walk recorded, before the world removes the patient. Records point at
    each other (an amendment at its original, a BMI at its weight and height): passes retry
    what a remaining reference still holds."""
    for _ in range(5):
        left = 0
        for resource_type in (t for t in CLEANUP_ORDER if t != "Patient"):
            bundle = await fhir.search(resource_type, {"_count": "200", "_elements": "id"})
            for entry in bundle.get("entry") or []:
                try:
                    await fhir.delete(resource_type, entry["resource"]["id"])
                except FhirConflict:
                    left += 1
        if not left:
            return


def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
async def walked(api: httpx.AsyncClient, world: World) -> dict[str, Any]:
    tenant = world.tenants["wk"]
    base = f"/api/patients/{tenant.patient['id']}"
    doctor, nurse = tenant.auth(Role.PHYSICIAN), tenant.auth(Role.NURSE)
    steps: dict[str, Any] = {}
    steps["encounter"] = _ok(
        await api.post(f"{base}/encounters", json={"class_code": "AMB"}, headers=doctor), 201
    )
    encounter_id = steps["encounter"]["id"]
    steps["vitals"] = _ok(
        await api.post(
            f"{base}/vitals",
            json={
                "encounter_id": encounter_id,
                "measurements": [
                    {"code": "85354-9", "systolic": 128, "diastolic": 82, "unit": "mm[Hg]"},
                    {"code": "8867-4", "value": 76, "unit": "/min"},
                    {"code": "29463-7", "value": 80, "unit": "kg"},
                    {"code": "8302-2", "value": 180, "unit": "cm"},
                ],
            },
            headers=nurse,
        ),
        201,
    )
    steps["problem"] = _ok(
        await api.post(
            f"{base}/problems",
            json={
                "code": {"system": "http://snomed.info/sct", "code": "38341003"},
                "text": "Hypertension",
                "onset": "2024-02-01",
            },
            headers=doctor,
        ),
        201,
    )
    steps["allergy"] = _ok(
        await api.post(
            f"{base}/allergies",
            json={
                "substance_text": "Penicillin",
                "category": ["medication"],
                "criticality": "high",
            },
            headers=doctor,
        ),
        201,
    )
    draft = _ok(
        await api.post(
            f"{base}/notes",
            json={
                "kind": "progress",
                "text": "Seen for blood pressure.",
                "encounter_id": encounter_id,
            },
            headers=doctor,
        ),
        201,
    )
    steps["signed"] = _ok(await api.post(f"{base}/notes/{draft['id']}/sign", headers=doctor))
    steps["amended"] = _ok(
        await api.post(
            f"{base}/notes/{draft['id']}/amend",
            json={"text": "Seen for blood pressure; amlodipine started."},
            headers=doctor,
        ),
        201,
    )
    # A discharge is versioned on the encounter the clinician has open: its read's ETag.
    opened = await api.get(f"{base}/encounters/{encounter_id}", headers=doctor)
    assert opened.status_code == 200, opened.text
    steps["discharged"] = _ok(
        await api.post(
            f"{base}/encounters/{encounter_id}/discharge",
            json={},
            headers={**doctor, "If-Match": opened.headers["etag"]},
        )
    )
    return steps


async def test_the_walk_shows_in_summary_and_timeline(
    api: httpx.AsyncClient, world: World, walked: dict[str, Any]
) -> None:
    tenant = world.tenants["wk"]
    base = f"/api/patients/{tenant.patient['id']}"
    assert walked["discharged"]["status"] == "finished"
    summary = _ok(await api.get(f"{base}/summary", headers=tenant.auth(Role.PHYSICIAN)))
    sections = summary["sections"]
    assert [e["id"] for e in sections["problems"]["entries"]] == [walked["problem"]["id"]]
    assert [e["id"] for e in sections["allergies"]["entries"]] == [walked["allergy"]["id"]]
    vitals = {e["code"].split("|")[1]: e for e in sections["vitals"]["entries"]}
    assert {"85354-9", "8867-4", "29463-7", "8302-2", "39156-5"} <= set(vitals)  # BMI derived
    assert vitals["85354-9"]["value"].startswith("128")
    assert "/82" in vitals["85354-9"]["value"]
    timeline = _ok(await api.get(f"{base}/timeline", headers=tenant.auth(Role.PHYSICIAN)))
    shown = {(item["kind"], item["id"]) for item in timeline["items"]}
    assert ("encounter", walked["encounter"]["id"]) in shown
    assert ("note", walked["amended"]["id"]) in shown
    assert ("note", walked["signed"]["id"]) in shown  # the superseded original stays in the record


async def test_the_same_chart_by_role(
    api: httpx.AsyncClient, world: World, walked: dict[str, Any]
) -> None:
    tenant = world.tenants["wk"]
    base = f"/api/patients/{tenant.patient['id']}"
    # Nurse: reads everything, records, but does not sign.
    nurse = tenant.auth(Role.NURSE)
    assert (await api.get(f"{base}/summary", headers=nurse)).status_code == 200
    draft = _ok(
        await api.post(
            f"{base}/notes", json={"kind": "progress", "text": "Nursing note."}, headers=nurse
        ),
        201,
    )
    assert (await api.post(f"{base}/notes/{draft['id']}/sign", headers=nurse)).status_code == 403
    # Front desk: demographics only.
    desk = tenant.auth(Role.FRONT_DESK)
    assert (await api.get(base, headers=desk)).status_code == 200
    for path in ("summary", "timeline", "encounters", "problems", "allergies", "vitals", "notes"):
        assert (await api.get(f"{base}/{path}", headers=desk)).status_code == 403, path
    # Patient: their own chart; only released notes, never a draft.
    patient = tenant.auth(Role.PATIENT)
    assert (await api.get(f"{base}/summary", headers=patient)).status_code == 200
    notes = _ok(await api.get(f"{base}/timeline", params={"kind": "note"}, headers=patient))
    note_ids = {item["id"] for item in notes["items"]}
    assert walked["amended"]["id"] in note_ids
    assert draft["id"] not in note_ids
    assert (await api.get(f"{base}/notes/{draft['id']}", headers=patient)).status_code == 404
    assert (
        await api.post(
            f"{base}/problems",
            json={"code": {"system": "http://snomed.info/sct", "code": "38341003"}},
            headers=patient,
        )
    ).status_code == 403
