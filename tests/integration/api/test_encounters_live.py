"""/api/patients/{id}/encounters against the real HAPI: start → read (ETag) → discharge;
planned → arrived → in-progress; illegal transitions 409 naming from/to; a missing If-Match 428,
a stale one 412;
another patient's encounter 404; the roles that may not see or write encounters.

The caller is injected with ``dependency_overrides`` (the role is switched per test through
``caller``); real tokens and tenants are exercised by the acceptance matrix.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator

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

TagForCleanup = Callable[[str, str], Awaitable[None]]
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


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
            "name": [{"family": f"Zzencounter{test_tag['code'].replace('-', '')}"}],
        }
    )
    return str(created["id"])


@pytest.fixture
async def patient_id(live_tenant_fhir: TenantFhirClient, test_tag: dict[str, str]) -> str:
    return await _patient(live_tenant_fhir, test_tag)


async def _start(
    api: httpx.AsyncClient, tag: TagForCleanup, patient_id: str, **body: object
) -> dict[str, object]:
    response = await api.post(
        f"/api/patients/{patient_id}/encounters", json={"class_code": "AMB", **body}
    )
    assert response.status_code == 201, response.text
    encounter: dict[str, object] = response.json()
    await tag("Encounter", str(encounter["id"]))
    return encounter


async def _audited_actions(db: Sessions, resource_id: str) -> set[str]:
    """The PHI audit actions recorded for one resource (written before the answer is sent)."""
    async with db() as session:
        rows = await session.scalars(
            select(AuditRecord.action).where(AuditRecord.resource_id == resource_id)
        )
        return set(rows)


def _if_match(encounter: dict[str, object]) -> dict[str, str]:
    """The If-Match header naming the version of ``encounter`` the client holds."""
    return {"If-Match": f'W/"{encounter["version"]}"'}


def _problem_code(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.text
    return str(response.json()["code"])


async def test_start_read_discharge(
    api: httpx.AsyncClient,
    db: Sessions,
    tag_for_cleanup: TagForCleanup,
    live_tenant_fhir: TenantFhirClient,
    patient_id: str,
) -> None:
    encounter = await _start(
        api,
        tag_for_cleanup,
        patient_id,
        class_code="IMP",
        type=[{"system": "http://snomed.info/sct", "code": "183452005"}],
        reason="Chest pain",
    )
    assert encounter["status"] == "in-progress"
    assert encounter["class_code"] == "IMP"
    assert encounter["start"] is not None
    base = f"/api/patients/{patient_id}/encounters/{encounter['id']}"

    read = await api.get(base)
    assert read.status_code == 200
    assert read.headers["etag"] == f'W/"{encounter["version"]}"'
    assert read.json()["reason"] == "Chest pain"

    discharged = await api.post(
        f"{base}/discharge",
        json={
            "discharge_disposition": {
                "system": "http://terminology.hl7.org/CodeSystem/discharge-disposition",
                "code": "home",
            }
        },
        headers={"If-Match": read.headers["etag"]},
    )
    assert discharged.status_code == 200, discharged.text
    body = discharged.json()
    assert body["status"] == "finished"
    assert body["end"] is not None
    assert body["discharge_disposition"]["code"] == "home"
    assert [h["status"] for h in body["status_history"]] == ["in-progress"]

    stored = await live_tenant_fhir.read("Encounter", str(encounter["id"]))
    assert stored["status"] == "finished"
    assert stored["class"] == {"system": ACT_CODE, "code": "IMP", "display": "inpatient encounter"}

    listed = await api.get(f"/api/patients/{patient_id}/encounters", params={"status": "finished"})
    assert [e["id"] for e in listed.json()["items"]] == [encounter["id"]]
    none_in_progress = await api.get(
        f"/api/patients/{patient_id}/encounters", params={"status": "in-progress"}
    )
    assert none_in_progress.json()["items"] == []
    assert await _audited_actions(db, str(encounter["id"])) == {
        "encounter:start",
        "encounter:read",
        "encounter:finished",
        "encounter:list",
    }


async def test_planned_arrives_then_starts(
    api: httpx.AsyncClient, tag_for_cleanup: TagForCleanup, patient_id: str
) -> None:
    encounter = await _start(api, tag_for_cleanup, patient_id, status="planned")
    base = f"/api/patients/{patient_id}/encounters/{encounter['id']}"
    arrived = await api.post(
        f"{base}/status", json={"status": "arrived"}, headers=_if_match(encounter)
    )
    assert arrived.json()["status"] == "arrived"
    started = await api.post(
        f"{base}/status", json={"status": "in-progress"}, headers=_if_match(arrived.json())
    )
    assert started.status_code == 200
    assert [h["status"] for h in started.json()["status_history"]] == ["planned", "arrived"]


async def test_illegal_transitions_are_409_naming_from_and_to(
    api: httpx.AsyncClient,
    tag_for_cleanup: TagForCleanup,
    live_tenant_fhir: TenantFhirClient,
    patient_id: str,
) -> None:
    encounter = await _start(api, tag_for_cleanup, patient_id)
    base = f"/api/patients/{patient_id}/encounters/{encounter['id']}"
    missing = await api.post(f"{base}/discharge")
    assert (missing.status_code, _problem_code(missing)) == (428, "if_match_required")
    discharged = await api.post(f"{base}/discharge", headers=_if_match(encounter))
    assert discharged.status_code == 200, discharged.text
    finished = _if_match(discharged.json())

    again = await api.post(f"{base}/cancel", headers=finished)
    assert again.status_code == 409
    assert _problem_code(again) == "encounter_transition_not_allowed"
    assert again.json()["from"] == "finished"
    assert again.json()["to"] == "cancelled"
    back = await api.post(f"{base}/status", json={"status": "in-progress"}, headers=finished)
    assert back.status_code == 409
    assert (await live_tenant_fhir.read("Encounter", str(encounter["id"])))["status"] == "finished"

    # entered-in-error is reachable from anywhere, once.
    erred = await api.post(f"{base}/entered-in-error", headers=finished)
    assert erred.json()["status"] == "entered-in-error"
    twice = await api.post(f"{base}/entered-in-error", headers=_if_match(erred.json()))
    assert twice.status_code == 409


async def test_a_stale_if_match_is_412_and_changes_nothing(
    api: httpx.AsyncClient,
    tag_for_cleanup: TagForCleanup,
    live_tenant_fhir: TenantFhirClient,
    patient_id: str,
) -> None:
    encounter = await _start(api, tag_for_cleanup, patient_id)
    base = f"/api/patients/{patient_id}/encounters/{encounter['id']}"
    stale = _if_match(encounter)
    left = await api.post(f"{base}/status", json={"status": "onleave"}, headers=stale)
    assert left.status_code == 200, left.text
    refused = await api.post(f"{base}/discharge", headers=stale)
    assert (refused.status_code, _problem_code(refused)) == (412, "fhir_precondition_failed")
    assert (await live_tenant_fhir.read("Encounter", str(encounter["id"])))["status"] == "onleave"


async def test_another_patients_encounter_is_404(
    api: httpx.AsyncClient,
    tag_for_cleanup: TagForCleanup,
    live_tenant_fhir: TenantFhirClient,
    test_tag: dict[str, str],
    patient_id: str,
) -> None:
    encounter = await _start(api, tag_for_cleanup, patient_id)
    other = await _patient(live_tenant_fhir, test_tag)
    response = await api.get(f"/api/patients/{other}/encounters/{encounter['id']}")
    assert response.status_code == 404
    assert (
        await api.post(
            f"/api/patients/{other}/encounters/{encounter['id']}/cancel",
            headers=_if_match(encounter),
        )
    ).status_code == 404


async def test_bad_class_is_422(api: httpx.AsyncClient, patient_id: str) -> None:
    response = await api.post(f"/api/patients/{patient_id}/encounters", json={"class_code": "XYZ"})
    assert response.status_code == 422


async def test_roles(
    api: httpx.AsyncClient,
    caller: Caller,
    tag_for_cleanup: TagForCleanup,
    live_tenant_fhir: TenantFhirClient,
    test_tag: dict[str, str],
    patient_id: str,
) -> None:
    encounter = await _start(api, tag_for_cleanup, patient_id)
    path = f"/api/patients/{patient_id}/encounters"

    caller.be("nurse")
    nurse_started = await api.post(path, json={"class_code": "EMER"})
    assert nurse_started.status_code == 201
    await tag_for_cleanup("Encounter", nurse_started.json()["id"])

    for role in ("front_desk", "billing"):
        caller.be(role)
        assert (await api.get(path)).status_code == 403
        assert (await api.post(path, json={"class_code": "AMB"})).status_code == 403

    caller.be("patient", patient_id)
    own = await api.get(path)
    assert own.status_code == 200
    assert encounter["id"] in [e["id"] for e in own.json()["items"]]
    assert (await api.post(path, json={"class_code": "AMB"})).status_code == 403
    other = await _patient(live_tenant_fhir, test_tag)
    assert (await api.get(f"/api/patients/{other}/encounters")).status_code == 404


async def test_encounter_list_pages_newest_first_by_cursor(
    api: httpx.AsyncClient, tag_for_cleanup: TagForCleanup, patient_id: str
) -> None:
    started = [
        await _start(api, tag_for_cleanup, patient_id, start=f"2026-0{month}-10T09:00:00+00:00")
        for month in range(1, 6)
    ]
    newest_first = [str(e["id"]) for e in reversed(started)]
    url = f"/api/patients/{patient_id}/encounters"
    seen: list[str] = []
    params: dict[str, object] = {"limit": 2}
    pages = 0
    while True:
        page = await api.get(url, params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["complete"] is True
        seen += [e["id"] for e in body["items"]]
        pages += 1
        if body["next"] is None:
            break
        params = {"limit": 2, "cursor": body["next"]}
    assert (seen, pages) == (newest_first, 3)
    assert [e["id"] for e in (await api.get(url)).json()["items"]] == newest_first

    first = (await api.get(url, params={"limit": 2})).json()
    other_filter = await api.get(url, params={"cursor": first["next"], "status": "finished"})
    assert other_filter.status_code == 422
    assert _problem_code(other_filter) == "invalid_list_cursor"


async def test_restricted_encounters_need_break_glass(
    api: httpx.AsyncClient,
    db: Sessions,
    tag_for_cleanup: TagForCleanup,
    live_tenant_fhir: TenantFhirClient,
    test_tag: dict[str, str],
    patient_id: str,
) -> None:
    plain = await _start(api, tag_for_cleanup, patient_id)
    restricted = await live_tenant_fhir.create(
        {
            "resourceType": "Encounter",
            "meta": {
                "tag": [test_tag],
                "security": [{"system": CONFIDENTIALITY, "code": "R"}],
            },
            "status": "finished",
            "class": {"system": ACT_CODE, "code": "AMB"},
            "subject": {"reference": f"Patient/{patient_id}"},
            "period": {"start": "2026-01-05T09:00:00Z", "end": "2026-01-05T10:00:00Z"},
        }
    )
    await tag_for_cleanup("Encounter", str(restricted["id"]))
    url = f"/api/patients/{patient_id}/encounters"

    listed = await api.get(url)
    assert listed.status_code == 200, listed.text
    assert ([e["id"] for e in listed.json()["items"]], listed.json()["withheld"]) == (
        [plain["id"]],
        1,
    )
    refused = await api.get(f"{url}/{restricted['id']}")
    assert refused.status_code == 403
    assert _problem_code(refused) == "break_glass_required"
    assert "encounter:read" not in await _audited_actions(db, str(restricted["id"]))

    glass = {"X-Break-Glass-Reason": "Unconscious patient in the emergency department"}
    opened = await api.get(url, headers=glass)
    assert sorted(e["id"] for e in opened.json()["items"]) == sorted(
        [plain["id"], restricted["id"]]
    )
    assert opened.json()["withheld"] == 0
    read = await api.get(f"{url}/{restricted['id']}", headers=glass)
    assert read.status_code == 200, read.text
    async with db() as session:
        flags = await session.scalars(
            select(AuditRecord.break_glass).where(
                AuditRecord.resource_id == str(restricted["id"]),
                AuditRecord.action == "encounter:read",
            )
        )
        assert list(flags) == [True]
