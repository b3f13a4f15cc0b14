"""/api/patients/{id}/encounters against a respx-mocked HAPI: error paths only (HAPI down,
a refused transition writes nothing, another patient's encounter, a missing or stale If-Match,
a lost If-Match race, restricted encounters)."""

from __future__ import annotations

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
VERSION_3 = {"If-Match": 'W/"3"'}


class Caller:
    """The principal the app sees and the audit trails the requests produced."""

    def __init__(self) -> None:
        self.principal = self.make("physician")
        self.trails: list[AuditTrail] = []

    @staticmethod
    def make(role: str, patient_id: str | None = None) -> Principal:
        return Principal(
            kind="user",
            subject=uuid.uuid4(),
            tenant=TENANT,
            tenant_id=uuid.uuid4(),
            roles=frozenset({role}),
            username=f"unit.{role}",
            patient_id=patient_id,
        )

    @property
    def actions(self) -> list[str]:
        return [n.action for t in self.trails for n in t.notes]


@pytest.fixture
def hapi() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        router.get(f"{TENANT_BASE}/Patient/p-1").mock(
            return_value=httpx.Response(200, json=PATIENT)
        )
        yield router


@pytest.fixture
def caller() -> Caller:
    return Caller()


@pytest.fixture
async def api(
    unit_settings: SettingsFactory, make_api: ApiFactory, caller: Caller
) -> httpx.AsyncClient:
    app: FastAPI = create_app(unit_settings())

    async def principal() -> Principal:
        return caller.principal

    async def trail() -> AsyncIterator[AuditTrail]:
        audit = AuditTrail()
        caller.trails.append(audit)
        yield audit

    app.dependency_overrides[get_current_principal] = principal
    app.dependency_overrides[get_phi_audit] = trail
    client: httpx.AsyncClient = await make_api(app)
    return client


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


def _encounter(status: str, subject: str = "Patient/p-1") -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": "e-1",
        "meta": {"versionId": "3"},
        "status": status,
        "subject": {"reference": subject},
        "period": {"start": "2026-01-01T08:00:00Z"},
    }


async def test_hapi_down_is_503(api: httpx.AsyncClient, hapi: respx.MockRouter) -> None:
    hapi.post(f"{TENANT_BASE}/Encounter").mock(side_effect=httpx.ConnectError("refused"))
    response = await api.post("/api/patients/p-1/encounters", json={"class_code": "AMB"})
    _problem(response, 503, "fhir_unavailable")


async def test_a_refused_transition_writes_nothing(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    hapi.get(f"{TENANT_BASE}/Encounter/e-1").mock(
        return_value=httpx.Response(200, json=_encounter("finished"))
    )
    put = hapi.put(f"{TENANT_BASE}/Encounter/e-1")
    body = _problem(
        await api.post("/api/patients/p-1/encounters/e-1/cancel", headers=VERSION_3),
        409,
        "encounter_transition_not_allowed",
    )
    assert (body["from"], body["to"]) == ("finished", "cancelled")
    assert not put.called
    assert "encounter:cancelled" not in caller.actions


async def test_another_patients_encounter_is_404(
    api: httpx.AsyncClient, hapi: respx.MockRouter
) -> None:
    hapi.get(f"{TENANT_BASE}/Encounter/e-1").mock(
        return_value=httpx.Response(200, json=_encounter("in-progress", "Patient/p-2"))
    )
    put = hapi.put(f"{TENANT_BASE}/Encounter/e-1")
    assert (await api.get("/api/patients/p-1/encounters/e-1")).status_code == 404
    discharge = await api.post("/api/patients/p-1/encounters/e-1/discharge", headers=VERSION_3)
    assert discharge.status_code == 404
    assert not put.called


async def test_a_lost_race_is_412_and_the_update_was_versioned(
    api: httpx.AsyncClient, hapi: respx.MockRouter
) -> None:
    hapi.get(f"{TENANT_BASE}/Encounter/e-1").mock(
        return_value=httpx.Response(200, json=_encounter("in-progress"))
    )
    put = hapi.put(f"{TENANT_BASE}/Encounter/e-1").mock(
        return_value=httpx.Response(
            409, json={"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}
        )
    )
    response = await api.post("/api/patients/p-1/encounters/e-1/discharge", headers=VERSION_3)
    _problem(response, 412, "fhir_precondition_failed")
    assert put.calls.last.request.headers["If-Match"] == 'W/"3"'


async def test_a_stale_if_match_is_412_without_a_write(
    api: httpx.AsyncClient, hapi: respx.MockRouter
) -> None:
    hapi.get(f"{TENANT_BASE}/Encounter/e-1").mock(
        return_value=httpx.Response(200, json=_encounter("in-progress"))
    )
    put = hapi.put(f"{TENANT_BASE}/Encounter/e-1")
    response = await api.post(
        "/api/patients/p-1/encounters/e-1/discharge", headers={"If-Match": 'W/"2"'}
    )
    _problem(response, 412, "fhir_precondition_failed")
    assert not put.called


def _restricted(encounter: dict[str, Any]) -> dict[str, Any]:
    security = [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]
    return {**encounter, "meta": {**encounter["meta"], "security": security}}


GLASS = {"X-Break-Glass-Reason": "Unconscious patient in the emergency department"}


async def test_restricted_encounters_are_withheld_from_the_list_unless_break_glass(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    plain = {**_encounter("in-progress"), "id": "e-2"}
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": _restricted(_encounter("finished"))},
            {"resource": plain},
        ],
    }
    hapi.get(f"{TENANT_BASE}/Encounter").mock(return_value=httpx.Response(200, json=bundle))
    listed = await api.get("/api/patients/p-1/encounters")
    assert listed.status_code == 200, listed.text
    assert [e["id"] for e in listed.json()["items"]] == ["e-2"]
    assert listed.json()["withheld"] == 1
    opened = await api.get("/api/patients/p-1/encounters", headers=GLASS)
    assert sorted(e["id"] for e in opened.json()["items"]) == ["e-1", "e-2"]
    assert opened.json()["withheld"] == 0
    assert any(n.break_glass for n in caller.trails[-1].notes)


async def test_a_restricted_encounter_is_read_only_with_break_glass(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    hapi.get(f"{TENANT_BASE}/Encounter/e-1").mock(
        return_value=httpx.Response(200, json=_restricted(_encounter("in-progress")))
    )
    _problem(await api.get("/api/patients/p-1/encounters/e-1"), 403, "break_glass_required")
    assert "encounter:read" not in caller.actions
    opened = await api.get("/api/patients/p-1/encounters/e-1", headers=GLASS)
    assert opened.status_code == 200, opened.text
    assert [n.break_glass for n in caller.trails[-1].notes] == [True]


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("discharge", None),
        ("cancel", None),
        ("entered-in-error", None),
        ("status", {"status": "onleave"}),
    ],
)
async def test_a_transition_without_if_match_is_428_and_reads_nothing(
    api: httpx.AsyncClient,
    hapi: respx.MockRouter,
    caller: Caller,
    route: str,
    body: dict[str, str] | None,
) -> None:
    read = hapi.get(f"{TENANT_BASE}/Encounter/e-1")
    put = hapi.put(f"{TENANT_BASE}/Encounter/e-1")
    response = await api.post(f"/api/patients/p-1/encounters/e-1/{route}", json=body)
    _problem(response, 428, "if_match_required")
    assert not read.called
    assert not put.called
    assert not any(a.startswith("encounter:") for a in caller.actions)
