"""/api/patients/{id}/vitals against the real HAPI: record a set (BMI derived), refuse impossible
values and wrong units, correct with If-Match (428 / 412), entered-in-error, roles.

The caller is a principal of the default tenant injected with ``dependency_overrides`` (real
tokens, roles and tenants are exercised by the acceptance matrix); each test picks the role.
Everything created carries ``meta.tag`` urn:ehr:test|<run id>; the Observations a test made are
deleted at its end, derived ones (BMI) before what they derive from.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from support.database import Sessions

from ehr.core.config import Settings
from ehr.core.db.models import AuditRecord
from ehr.core.error_handlers import PROBLEM_JSON
from ehr.fhir import FhirResourceGone, FhirResourceNotFound, TenantFhirClient
from ehr.modules.vitals import latest_vitals
from ehr.platform.auth.authorization import CONFIDENTIALITY_SYSTEM
from ehr.platform.auth.dependencies import get_current_principal
from ehr.platform.auth.principal import Principal

pytestmark = pytest.mark.integration

SetRole = Callable[..., Principal]
BP, HR, WEIGHT, HEIGHT, BMI, TEMP = "85354-9", "8867-4", "29463-7", "8302-2", "39156-5", "8310-5"


@pytest.fixture
def as_role(app: FastAPI, settings: Settings) -> Iterator[SetRole]:
    """``as_role("nurse")``: the API's caller from now on (``patient_id=`` for a portal user)."""

    def set_role(role: str, *, patient_id: str | None = None) -> Principal:
        principal = Principal(
            kind="user",
            subject=uuid.uuid4(),
            tenant=settings.fhir.default_tenant,
            tenant_id=uuid.uuid4(),
            roles=frozenset({role}),
            username=f"live.{role}",
            patient_id=patient_id,
        )

        async def current() -> Principal:
            return principal

        app.dependency_overrides[get_current_principal] = current
        return principal

    set_role("nurse")
    try:
        yield set_role
    finally:
        app.dependency_overrides.pop(get_current_principal, None)


async def _create(
    fhir: TenantFhirClient, test_tag: dict[str, str], resource: dict[str, Any]
) -> dict[str, Any]:
    return await fhir.create({**resource, "meta": {"tag": [test_tag]}})


@pytest.fixture
async def patient_id(live_tenant_fhir: TenantFhirClient, test_tag: dict[str, str]) -> str:
    patient = await _create(
        live_tenant_fhir, test_tag, {"resourceType": "Patient", "name": [{"family": "Zzvitals"}]}
    )
    return str(patient["id"])


@pytest.fixture
async def observations(
    live_tenant_fhir: TenantFhirClient, test_tag: dict[str, str], patient_id: str
) -> AsyncIterator[None]:
    """Tags the patient's Observations and deletes them at the end (derived ones first)."""
    yield
    bundle = await live_tenant_fhir.search(
        "Observation", {"subject": f"Patient/{patient_id}", "_count": "200"}
    )
    found = [e["resource"] for e in bundle.get("entry", [])]
    for resource in sorted(found, key=lambda r: "derivedFrom" not in r):
        with contextlib.suppress(FhirResourceNotFound, FhirResourceGone):
            await live_tenant_fhir.delete("Observation", resource["id"])


def _path(patient_id: str, tail: str = "") -> str:
    return f"/api/patients/{patient_id}/vitals{tail}"


async def _record(api: httpx.AsyncClient, patient_id: str, **body: Any) -> httpx.Response:
    return await api.post(_path(patient_id), json=body)


def _by_code(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["code"]: item for item in items}


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem: dict[str, Any] = response.json()
    assert problem["code"] == code, problem
    return problem


@pytest.mark.usefixtures("observations")
async def test_a_set_with_weight_and_height_derives_the_bmi(
    api: httpx.AsyncClient,
    as_role: SetRole,
    patient_id: str,
    live_tenant_fhir: TenantFhirClient,
    test_tag: dict[str, str],
) -> None:
    encounter = await _create(
        live_tenant_fhir,
        test_tag,
        {
            "resourceType": "Encounter",
            "status": "in-progress",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "AMB",
            },
            "subject": {"reference": f"Patient/{patient_id}"},
        },
    )
    recorded = await _record(
        api,
        patient_id,
        effective="2026-03-01T09:30:00Z",
        encounter_id=encounter["id"],
        measurements=[
            {"code": BP, "systolic": 128, "diastolic": 82, "unit": "mm[Hg]"},
            {"code": HR, "value": 72, "unit": "/min"},
            {"code": WEIGHT, "value": 154, "unit": "[lb_av]"},
            {"code": HEIGHT, "value": 70, "unit": "[in_i]"},
        ],
    )
    assert recorded.status_code == 201, recorded.text
    items = _by_code(recorded.json()["items"])
    assert set(items) == {BP, HR, WEIGHT, HEIGHT, BMI}
    assert (items[WEIGHT]["value"], items[WEIGHT]["unit"]) == (69.85, "kg")
    assert (items[HEIGHT]["value"], items[HEIGHT]["unit"]) == (177.8, "cm")
    assert (items[BMI]["value"], items[BMI]["unit"]) == (22.1, "kg/m2")
    assert sorted(items[BMI]["derived_from"]) == sorted([items[WEIGHT]["id"], items[HEIGHT]["id"]])
    assert [(c["code"], c["value"]) for c in items[BP]["components"]] == [
        ("8480-6", 128),
        ("8462-4", 82),
    ]
    assert all(item["encounter_id"] == encounter["id"] for item in items.values())

    # As stored in HAPI: the vital-signs profile.
    stored = await live_tenant_fhir.read("Observation", items[WEIGHT]["id"])
    assert stored["status"] == "final"
    assert stored["category"][0]["coding"][0]["code"] == "vital-signs"
    assert stored["subject"] == {"reference": f"Patient/{patient_id}"}
    assert stored["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    assert stored["valueQuantity"]["code"] == "kg"

    # Read back: list (latest first, filter by code), one (ETag), the summary's latest vitals.
    as_role("pharmacist")
    listed = await api.get(_path(patient_id), params={"code": BMI})
    assert listed.status_code == 200, listed.text
    assert [i["id"] for i in listed.json()["items"]] == [items[BMI]["id"]]
    one = await api.get(_path(patient_id, f"/{items[HR]['id']}"))
    assert one.status_code == 200
    assert one.headers["etag"] == f'W/"{one.json()["version"]}"'
    latest = await latest_vitals(live_tenant_fhir, patient_id)
    assert {v.code for v in latest} == {BP, HR, WEIGHT, HEIGHT, BMI}

    # A later weight alone reuses the recorded height.
    as_role("physician")
    later = await _record(
        api,
        patient_id,
        effective="2026-03-08T09:30:00Z",
        measurements=[{"code": WEIGHT, "value": 72, "unit": "kg"}],
    )
    assert later.status_code == 201, later.text
    again = _by_code(later.json()["items"])
    assert again[BMI]["value"] == 22.8
    assert items[HEIGHT]["id"] in again[BMI]["derived_from"]
    first = await api.get(_path(patient_id), params={"code": WEIGHT})
    assert [i["value"] for i in first.json()["items"]] == [72, 69.85]  # latest first


@pytest.mark.usefixtures("observations")
async def test_impossible_values_and_wrong_units_are_refused(
    api: httpx.AsyncClient, as_role: SetRole, patient_id: str, live_tenant_fhir: TenantFhirClient
) -> None:
    hot = await _record(
        api, patient_id, measurements=[{"code": TEMP, "value": 120, "unit": "[degF]"}]
    )
    problem = _problem(hot, 422, "value_out_of_range")
    assert "between 77 and 113 [degF]" in problem["detail"]
    inverted = await _record(
        api,
        patient_id,
        measurements=[{"code": BP, "systolic": 80, "diastolic": 120, "unit": "mm[Hg]"}],
    )
    _problem(inverted, 422, "value_out_of_range")
    wrong_kind = await _record(
        api, patient_id, measurements=[{"code": WEIGHT, "value": 70, "unit": "cm"}]
    )
    _problem(wrong_kind, 422, "unit_not_allowed")
    not_ucum = await _record(
        api,
        patient_id,
        measurements=[{"code": BP, "systolic": 120, "diastolic": 80, "unit": "mmHg"}],
    )
    _problem(not_ucum, 422, "unit_not_allowed")
    # One bad measurement: nothing of the set is stored.
    mixed = await _record(
        api,
        patient_id,
        measurements=[
            {"code": HR, "value": 70, "unit": "/min"},
            {"code": "9279-1", "value": 200, "unit": "/min"},
        ],
    )
    _problem(mixed, 422, "value_out_of_range")
    found = await live_tenant_fhir.search(
        "Observation", {"subject": f"Patient/{patient_id}", "_summary": "count"}
    )
    assert found["total"] == 0


@pytest.mark.usefixtures("observations")
async def test_another_patients_encounter_is_refused(
    api: httpx.AsyncClient,
    as_role: SetRole,
    patient_id: str,
    live_tenant_fhir: TenantFhirClient,
    test_tag: dict[str, str],
) -> None:
    other = await _create(
        live_tenant_fhir, test_tag, {"resourceType": "Patient", "name": [{"family": "Zzother"}]}
    )
    encounter = await _create(
        live_tenant_fhir,
        test_tag,
        {
            "resourceType": "Encounter",
            "status": "in-progress",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "AMB",
            },
            "subject": {"reference": f"Patient/{other['id']}"},
        },
    )
    response = await _record(
        api,
        patient_id,
        encounter_id=encounter["id"],
        measurements=[{"code": HR, "value": 70, "unit": "/min"}],
    )
    _problem(response, 422, "encounter_not_of_patient")


@pytest.mark.usefixtures("observations")
async def test_corrections_need_the_current_version_and_entered_in_error_keeps_the_record(
    api: httpx.AsyncClient, as_role: SetRole, patient_id: str, live_tenant_fhir: TenantFhirClient
) -> None:
    recorded = await _record(
        api,
        patient_id,
        measurements=[
            {"code": WEIGHT, "value": 80, "unit": "kg"},
            {"code": HEIGHT, "value": 180, "unit": "cm"},
        ],
    )
    assert recorded.status_code == 201, recorded.text
    items = _by_code(recorded.json()["items"])
    weight = items[WEIGHT]
    path = _path(patient_id, f"/{weight['id']}")

    missing = await api.put(path, json={"value": 81, "unit": "kg"})
    _problem(missing, 428, "if_match_required")
    corrected = await api.put(
        path, json={"value": 81, "unit": "kg"}, headers={"If-Match": f'W/"{weight["version"]}"'}
    )
    assert corrected.status_code == 200, corrected.text
    assert (corrected.json()["value"], corrected.json()["status"]) == (81, "amended")
    assert corrected.headers["etag"] == f'W/"{corrected.json()["version"]}"'
    # The BMI derived from the weight follows the correction (81 kg, 180 cm).
    recomputed = await live_tenant_fhir.read("Observation", items[BMI]["id"])
    assert (recomputed["valueQuantity"]["value"], recomputed["status"]) == (25.0, "amended")
    stale = await api.put(
        path, json={"value": 82, "unit": "kg"}, headers={"If-Match": weight["version"]}
    )
    _problem(stale, 412, "fhir_precondition_failed")
    impossible = await api.put(
        path,
        json={"value": 900, "unit": "kg"},
        headers={"If-Match": corrected.json()["version"]},
    )
    _problem(impossible, 422, "value_out_of_range")

    stale_mark = await api.post(
        _path(patient_id, f"/{weight['id']}/entered-in-error"),
        headers={"If-Match": weight["version"]},
    )
    _problem(stale_mark, 412, "fhir_precondition_failed")
    marked = await api.post(_path(patient_id, f"/{weight['id']}/entered-in-error"))
    assert marked.status_code == 200, marked.text
    assert marked.json()["status"] == "entered-in-error"
    # Never deleted; the BMI derived from it is marked with it; lists leave both out.
    stored = await live_tenant_fhir.read("Observation", weight["id"])
    assert stored["status"] == "entered-in-error"
    bmi = await live_tenant_fhir.read("Observation", items[BMI]["id"])
    assert bmi["status"] == "entered-in-error"
    listed = await api.get(_path(patient_id))
    assert [i["code"] for i in listed.json()["items"]] == [HEIGHT]
    with_errors = await api.get(_path(patient_id), params={"include_entered_in_error": "true"})
    assert {i["code"] for i in with_errors.json()["items"]} == {WEIGHT, HEIGHT, BMI}
    again = await api.post(_path(patient_id, f"/{weight['id']}/entered-in-error"))
    assert again.status_code == 200
    late = await api.put(path, json={"value": 80, "unit": "kg"}, headers={"If-Match": "99"})
    _problem(late, 409, "vital_entered_in_error")


@pytest.mark.usefixtures("observations")
async def test_roles_and_the_patients_compartment(
    api: httpx.AsyncClient,
    as_role: SetRole,
    patient_id: str,
    live_tenant_fhir: TenantFhirClient,
    test_tag: dict[str, str],
) -> None:
    recorded = await _record(
        api, patient_id, measurements=[{"code": HR, "value": 64, "unit": "/min"}]
    )
    assert recorded.status_code == 201, recorded.text
    vital_id = recorded.json()["items"][0]["id"]
    body = {"measurements": [{"code": HR, "value": 70, "unit": "/min"}]}

    for role in ("front_desk", "billing"):
        as_role(role)
        _problem(await api.get(_path(patient_id)), 403, "permission_denied")
        _problem(await api.get(_path(patient_id, f"/{vital_id}")), 403, "permission_denied")
        _problem(await api.post(_path(patient_id), json=body), 403, "permission_denied")

    as_role("pharmacist")
    _problem(await api.post(_path(patient_id), json=body), 403, "permission_denied")

    as_role("patient", patient_id=patient_id)
    own = await api.get(_path(patient_id))
    assert [i["id"] for i in own.json()["items"]] == [vital_id]
    _problem(await api.post(_path(patient_id), json=body), 403, "permission_denied")
    other = await _create(
        live_tenant_fhir, test_tag, {"resourceType": "Patient", "name": [{"family": "Zzother"}]}
    )
    _problem(await api.get(_path(other["id"])), 404, "fhir_not_found")
    # Another patient's vital under this patient's path: 404 (as if missing).
    as_role("nurse")
    _problem(await api.get(_path(other["id"], f"/{vital_id}")), 404, "fhir_not_found")


@pytest.mark.usefixtures("observations")
async def test_pages_follow_next_and_every_access_is_audited(
    api: httpx.AsyncClient, as_role: SetRole, patient_id: str, db: Sessions
) -> None:
    for day in ("01", "02", "03"):
        response = await _record(
            api,
            patient_id,
            effective=f"2026-02-{day}T08:00:00Z",
            measurements=[{"code": HR, "value": 60 + int(day), "unit": "/min"}],
        )
        assert response.status_code == 201, response.text
    future = await _record(
        api,
        patient_id,
        effective="2099-01-01T08:00:00Z",
        measurements=[{"code": HR, "value": 60, "unit": "/min"}],
    )
    _problem(future, 422, "effective_in_future")

    values: list[float] = []
    page = await api.get(_path(patient_id), params={"_count": 2, "code": HR})
    while True:
        assert page.status_code == 200, page.text
        values += [item["value"] for item in page.json()["items"]]
        if page.json()["next"] is None:
            break
        page = await api.get(page.json()["next"])
    assert values == [63, 62, 61]
    in_range = await api.get(
        _path(patient_id), params={"since": "2026-02-02", "until": "2026-02-02"}
    )
    assert [item["value"] for item in in_range.json()["items"]] == [62]
    forged = await api.get(_path(patient_id), params={"page_token": "abc.def"})
    _problem(forged, 400, "invalid_page_token")

    async with db() as session:
        actions = list(
            await session.scalars(
                select(AuditRecord.action).where(AuditRecord.patient_id == patient_id)
            )
        )
    assert actions.count("vitals:record") == 3
    assert actions.count("vitals:list") >= 3


@pytest.mark.usefixtures("observations")
async def test_a_restricted_patient_needs_break_glass(
    api: httpx.AsyncClient,
    as_role: SetRole,
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
            "name": [{"family": "Zzrestricted"}],
        }
    )
    body = {"measurements": [{"code": HR, "value": 70, "unit": "/min"}]}
    as_role("physician")
    _problem(await api.post(_path(restricted["id"]), json=body), 403, "break_glass_required")
    reason = {"X-Break-Glass-Reason": "Unconscious patient in the emergency department"}
    allowed = await api.post(_path(restricted["id"]), json=body, headers=reason)
    assert allowed.status_code == 201, allowed.text
    read = await api.get(_path(restricted["id"]), headers=reason)
    assert [i["value"] for i in read.json()["items"]] == [70]
    # The fixture cleans only the main patient's Observations.
    for item in allowed.json()["items"]:
        await live_tenant_fhir.delete("Observation", item["id"])
