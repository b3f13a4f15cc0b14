"""/api/patients against a respx-mocked HAPI: mapping, paging, conditional create, errors;
authorization (permission, portal compartment, break-glass) and the PHI audit notes.

The caller is a principal injected with ``dependency_overrides`` (the auth dependency is tested
on its own); ``CALLER`` is the principal of the current test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from fastapi import FastAPI

from ehr.core.error_handlers import PROBLEM_JSON
from ehr.core.errors import AuthenticationRequired
from ehr.entrypoints.api import create_app
from ehr.platform.audit.dependencies import AuditTrail, get_phi_audit
from ehr.platform.auth.authorization import CONFIDENTIALITY_SYSTEM
from ehr.platform.auth.dependencies import get_current_principal
from ehr.platform.auth.principal import Principal

SettingsFactory = Callable[..., Any]
ApiFactory = Callable[..., Any]

BASE = "http://127.0.0.1:9/fhir"  # tests/unit/conftest.py UNIT_FHIR_BASE
TENANT = "unit-tenant"
TENANT_BASE = f"{BASE}/{TENANT}"


def make_principal(*roles: str, patient_id: str | None = None) -> Principal:
    return Principal(
        kind="user",
        subject=uuid.uuid4(),
        tenant=TENANT,
        tenant_id=uuid.uuid4(),
        roles=frozenset(roles),
        username="unit.user",
        patient_id=patient_id,
    )


class Caller:
    """The principal the app sees (None: unauthenticated) and the audit notes it produced."""

    def __init__(self) -> None:
        self.principal: Principal | None = make_principal("physician")
        self.trails: list[AuditTrail] = []

    def as_(self, *roles: str, patient_id: str | None = None) -> None:
        self.principal = make_principal(*roles, patient_id=patient_id)

    @property
    def notes(self) -> list[tuple[str, str | None, str | None]]:
        """(action, patient id, break-glass reason if the access was flagged)."""
        return [
            (n.action, n.patient_id, n.break_glass_reason if n.break_glass else None)
            for t in self.trails
            for n in t.notes
        ]


def make_patient(**overrides: Any) -> dict[str, Any]:
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": "p-1",
        "meta": {"versionId": "1"},
        "identifier": [{"system": "urn:ehr:test:mrn", "value": "T-1"}],
        "name": [
            {"use": "usual", "given": ["Nick"]},
            {"use": "official", "family": "Testperson", "given": ["Alex", "B"]},
        ],
        "gender": "unknown",
        "birthDate": "1970-01-01",
    }
    patient.update(overrides)
    return patient


def make_bundle(resources: list[dict[str, Any]], *, next_url: str | None = None) -> dict[str, Any]:
    links = [{"relation": "self", "url": f"{TENANT_BASE}/Patient"}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 42,
        "link": links,
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


@pytest.fixture
def hapi() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
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
        if caller.principal is None:
            raise AuthenticationRequired("No valid credentials were presented")
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


# --- read ----------------------------------------------------------------------------------------


async def test_read_returns_the_summary(api: httpx.AsyncClient, hapi: respx.MockRouter) -> None:
    hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=make_patient())
    response = await api.get("/api/patients/p-1")
    assert response.status_code == 200
    assert response.json() == {
        "id": "p-1",
        "name": "Alex B Testperson",
        "gender": "unknown",
        "birth_date": "1970-01-01",
        "identifiers": [{"system": "urn:ehr:test:mrn", "value": "T-1"}],
    }


async def test_read_missing_patient_is_404_problem(
    api: httpx.AsyncClient, hapi: respx.MockRouter
) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "x"}]}
    hapi.get(f"{TENANT_BASE}/Patient/nope").respond(404, json=outcome)
    body = _problem(await api.get("/api/patients/nope"), 404, "fhir_not_found")
    assert "operation_outcome" not in body


@pytest.mark.parametrize("bad_id", ["a$b", "x" * 65, "a%2Fb", "..%2F.."])
async def test_read_refuses_malformed_ids_before_calling_hapi(
    api: httpx.AsyncClient, hapi: respx.MockRouter, bad_id: str
) -> None:
    response = await api.get(f"/api/patients/{bad_id}")
    assert response.status_code in (404, 422)
    assert response.headers["content-type"] == PROBLEM_JSON
    assert not hapi.calls


# --- search and paging ---------------------------------------------------------------------------


async def test_search_maps_parameters_and_results(
    api: httpx.AsyncClient, hapi: respx.MockRouter
) -> None:
    route = hapi.get(f"{TENANT_BASE}/Patient").respond(json=make_bundle([make_patient()]))
    response = await api.get(
        "/api/patients",
        params={
            "name": "Testperson",
            "identifier": "urn:ehr:test:mrn|T-1",
            "birthdate": "ge1960-01-01",
            "_count": "5",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 42
    assert body["next"] is None
    assert [item["id"] for item in body["items"]] == ["p-1"]
    sent = parse_qs(urlsplit(str(route.calls.last.request.url)).query)
    assert sent == {
        "name": ["Testperson"],
        "identifier": ["urn:ehr:test:mrn|T-1"],
        "birthdate": ["ge1960-01-01"],
        "_count": ["5"],
        "_total": ["accurate"],
    }


async def test_search_pages_follow_a_signed_token(
    api: httpx.AsyncClient, hapi: respx.MockRouter
) -> None:
    hapi_next = f"{TENANT_BASE}?_getpages=abc&_getpagesoffset=1&_count=1&_bundletype=searchset"
    hapi.get(f"{TENANT_BASE}/Patient").respond(
        json=make_bundle([make_patient()], next_url=hapi_next)
    )
    page_two = hapi.get(TENANT_BASE, params={"_getpages": "abc"}).respond(
        json=make_bundle([make_patient(id="p-2")])
    )
    first = (await api.get("/api/patients", params={"_count": "1"})).json()
    assert first["next"].startswith("/api/patients?page_token=")
    assert "_getpages" not in first["next"]  # HAPI's URL is not exposed
    second = await api.get(first["next"])
    assert second.status_code == 200
    assert [item["id"] for item in second.json()["items"]] == ["p-2"]
    assert page_two.call_count == 1


async def test_tampered_page_token_is_refused(
    api: httpx.AsyncClient, hapi: respx.MockRouter
) -> None:
    hapi_next = f"{TENANT_BASE}?_getpages=abc&_getpagesoffset=1"
    hapi.get(f"{TENANT_BASE}/Patient").respond(json=make_bundle([], next_url=hapi_next))
    token = (await api.get("/api/patients")).json()["next"].split("page_token=")[1]
    body_part, mac = token.split(".")
    forged = body_part[:-2] + ("AA" if not body_part.endswith("AA") else "BB") + "." + mac
    _problem(
        await api.get("/api/patients", params={"page_token": forged}), 400, "invalid_page_token"
    )
    _problem(
        await api.get("/api/patients", params={"page_token": "abc.def"}), 400, "invalid_page_token"
    )


@pytest.mark.parametrize(
    "params",
    [
        {"_count": "0"},
        {"_count": "101"},
        {"_count": "ten"},
        {"birthdate": "1970/01/01"},
        {"birthdate": "xx1970"},
        {"name": "x" * 101},
        {"identifier": "bad\u0001value"},
        {"page_token": "not a token"},
    ],
)
async def test_search_refuses_bad_parameters(
    api: httpx.AsyncClient, hapi: respx.MockRouter, params: dict[str, str]
) -> None:
    body = _problem(await api.get("/api/patients", params=params), 422, "validation_failed")
    assert body["errors"]
    assert not hapi.calls


# --- create --------------------------------------------------------------------------------------

NEW_PATIENT = {
    "identifier": {"system": "urn:ehr:test:mrn", "value": "T-9|x"},
    "family": "Testperson",
    "given": ["Alex"],
    "gender": "female",
    "birth_date": "1980-02-03",
}


async def test_create_is_a_conditional_create_on_the_identifier(
    api: httpx.AsyncClient, hapi: respx.MockRouter
) -> None:
    route = hapi.post(f"{TENANT_BASE}/Patient").respond(
        201,
        json=make_patient(
            id="new-1", identifier=[{"system": "urn:ehr:test:mrn", "value": "T-9|x"}]
        ),
    )
    response = await api.post("/api/patients", json=NEW_PATIENT)
    assert response.status_code == 201
    assert response.headers["location"] == "/api/patients/new-1"
    assert response.json()["id"] == "new-1"
    request = route.calls.last.request
    # '|' inside the value is escaped for FHIR search; the condition is URL-encoded.
    assert request.headers["if-none-exist"] == "identifier=urn:ehr:test:mrn|T-9%5C|x"
    sent = json.loads(request.content)
    assert sent["resourceType"] == "Patient"
    assert sent["identifier"] == [{"system": "urn:ehr:test:mrn", "value": "T-9|x"}]
    assert sent["name"] == [{"use": "official", "family": "Testperson", "given": ["Alex"]}]
    assert sent["birthDate"] == "1980-02-03"
    assert sent["gender"] == "female"


@pytest.mark.parametrize(
    "change",
    [
        {"identifier": None},
        {"identifier": {"system": "not a uri", "value": "1"}},
        {"identifier": {"system": "urn:x", "value": ""}},
        {"family": ""},
        {"gender": "robot"},
        {"birth_date": "2999-01-01"},
        {"unexpected": True},
    ],
)
async def test_create_refuses_invalid_payloads(
    api: httpx.AsyncClient, hapi: respx.MockRouter, change: dict[str, Any]
) -> None:
    payload = {**NEW_PATIENT, **change}
    payload = {key: value for key, value in payload.items() if value is not None}
    _problem(await api.post("/api/patients", json=payload), 422, "validation_failed")
    assert not hapi.calls


async def test_create_with_several_matches_is_412(
    api: httpx.AsyncClient, hapi: respx.MockRouter
) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "x"}]}
    hapi.post(f"{TENANT_BASE}/Patient").respond(412, json=outcome)
    _problem(await api.post("/api/patients", json=NEW_PATIENT), 412, "fhir_precondition_failed")


# --- HAPI outage ---------------------------------------------------------------------------------


async def test_hapi_down_is_503_and_the_api_recovers(
    api: httpx.AsyncClient, hapi: respx.MockRouter
) -> None:
    route = hapi.get(f"{TENANT_BASE}/Patient/p-1")
    route.side_effect = httpx.ConnectError("connection refused")
    for path in ("/api/patients/p-1",):
        body = _problem(await api.get(path), 503, "fhir_unavailable")
        assert "refused" not in body["detail"]
    hapi.post(f"{TENANT_BASE}/Patient").mock(side_effect=httpx.ConnectError("refused"))
    _problem(await api.post("/api/patients", json=NEW_PATIENT), 503, "fhir_unavailable")

    # HAPI is back: the same pooled client answers, no restart.
    route.side_effect = None
    route.return_value = httpx.Response(200, json=make_patient())
    response = await api.get("/api/patients/p-1")
    assert response.status_code == 200
    assert response.json()["id"] == "p-1"


async def test_hapi_timeout_is_504_problem(api: httpx.AsyncClient, hapi: respx.MockRouter) -> None:
    hapi.get(f"{TENANT_BASE}/Patient").mock(side_effect=httpx.ReadTimeout("slow"))
    _problem(await api.get("/api/patients"), 504, "fhir_timeout")


# --- authorization and audit ---------------------------------------------------------------------

RESTRICTED = {"security": [{"system": CONFIDENTIALITY_SYSTEM, "code": "R"}], "versionId": "1"}


async def test_unauthenticated_is_401_and_hapi_is_not_called(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    caller.principal = None
    for method, path in (("GET", "/api/patients"), ("GET", "/api/patients/p-1")):
        _problem(await api.request(method, path), 401, "authentication_required")
    _problem(await api.post("/api/patients", json=NEW_PATIENT), 401, "authentication_required")
    assert not hapi.calls
    assert caller.notes == []


async def test_missing_permission_is_403_and_hapi_is_not_called(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    caller.as_("admin")  # no patient:read
    body = _problem(await api.get("/api/patients/p-1"), 403, "permission_denied")
    assert "patient:read" in body["detail"]
    caller.as_("lab_technician")  # reads patients, cannot create them
    _problem(await api.post("/api/patients", json=NEW_PATIENT), 403, "permission_denied")
    assert not hapi.calls


async def test_the_request_runs_in_the_principals_tenant(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    other = hapi.get(f"{BASE}/other-tenant/Patient/p-1").respond(json=make_patient())
    mine = hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=make_patient())
    response = await api.get("/api/patients/p-1", headers={"X-Tenant": "other-tenant"})
    assert response.status_code == 200
    assert mine.call_count == 1
    assert not other.called


async def test_reading_a_patient_notes_one_audit_access(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=make_patient())
    assert (await api.get("/api/patients/p-1")).status_code == 200
    assert caller.notes == [("patient:read", "p-1", None)]


async def test_search_and_create_are_audited(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    hapi.get(f"{TENANT_BASE}/Patient").respond(
        json=make_bundle([make_patient(), make_patient(id="p-2")])
    )
    hapi.post(f"{TENANT_BASE}/Patient").respond(201, json=make_patient(id="new-1"))
    assert (await api.get("/api/patients")).status_code == 200
    assert (await api.post("/api/patients", json=NEW_PATIENT)).status_code == 201
    assert caller.notes == [
        ("patient:search", "p-1", None),
        ("patient:search", "p-2", None),
        ("patient:create", "new-1", None),
    ]


async def test_portal_patient_reads_only_its_own_record(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    caller.as_("patient", patient_id="p-1")
    hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=make_patient())
    other = hapi.get(f"{TENANT_BASE}/Patient/p-2").respond(json=make_patient(id="p-2"))
    assert (await api.get("/api/patients/p-1")).status_code == 200
    body = _problem(await api.get("/api/patients/p-2"), 404, "fhir_not_found")
    assert "Testperson" not in json.dumps(body)
    assert not other.called


async def test_portal_patient_search_is_confined_to_its_compartment(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    caller.as_("patient", patient_id="p-1")
    route = hapi.get(f"{TENANT_BASE}/Patient").respond(
        json=make_bundle([make_patient(), make_patient(id="p-2")])
    )
    body = (await api.get("/api/patients", params={"name": "Testperson"})).json()
    assert [item["id"] for item in body["items"]] == ["p-1"]
    assert body["total"] == 1
    sent = parse_qs(urlsplit(str(route.calls.last.request.url)).query)
    assert sent["_id"] == ["p-1"]


async def test_portal_user_without_a_linked_patient_sees_nothing(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    caller.as_("patient")
    body = (await api.get("/api/patients")).json()
    assert body == {"items": [], "total": 0, "next": None}
    _problem(await api.get("/api/patients/p-1"), 404, "fhir_not_found")
    assert not hapi.calls


async def test_page_tokens_do_not_cross_compartments(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    hapi_next = f"{TENANT_BASE}?_getpages=abc&_getpagesoffset=1"
    hapi.get(f"{TENANT_BASE}/Patient").respond(json=make_bundle([], next_url=hapi_next))
    token = (await api.get("/api/patients")).json()["next"].split("page_token=")[1]
    caller.as_("patient", patient_id="p-1")
    _problem(
        await api.get("/api/patients", params={"page_token": token}), 400, "invalid_page_token"
    )


async def test_restricted_patient_needs_break_glass(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=make_patient(meta=RESTRICTED))
    body = _problem(await api.get("/api/patients/p-1"), 403, "break_glass_required")
    assert "Testperson" not in json.dumps(body)
    short = {"X-Break-Glass-Reason": "urgent"}
    _problem(await api.get("/api/patients/p-1", headers=short), 403, "break_glass_required")
    assert caller.notes == []

    reason = "Unconscious patient in the emergency department"
    response = await api.get("/api/patients/p-1", headers={"X-Break-Glass-Reason": reason})
    assert response.status_code == 200
    assert caller.notes == [("patient:read", "p-1", reason)]


async def test_break_glass_needs_the_permission(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    caller.as_("front_desk")
    hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=make_patient(meta=RESTRICTED))
    reason = {"X-Break-Glass-Reason": "Unconscious patient in the emergency department"}
    _problem(await api.get("/api/patients/p-1", headers=reason), 403, "permission_denied")


async def test_search_omits_restricted_patients_without_break_glass(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    hapi.get(f"{TENANT_BASE}/Patient").respond(
        json=make_bundle([make_patient(), make_patient(id="p-2", meta=RESTRICTED)])
    )
    body = (await api.get("/api/patients")).json()
    assert [item["id"] for item in body["items"]] == ["p-1"]
    reason = "Unconscious patient in the emergency department"
    body = (await api.get("/api/patients", headers={"X-Break-Glass-Reason": reason})).json()
    assert [item["id"] for item in body["items"]] == ["p-1", "p-2"]
    assert caller.notes[-1] == ("patient:search", "p-2", reason)


async def test_create_matching_a_restricted_patient_needs_break_glass(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    hapi.post(f"{TENANT_BASE}/Patient").respond(200, json=make_patient(meta=RESTRICTED))
    _problem(await api.post("/api/patients", json=NEW_PATIENT), 403, "break_glass_required")
