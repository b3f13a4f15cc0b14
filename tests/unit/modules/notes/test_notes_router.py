"""/api/patients/{id}/notes against a respx-mocked HAPI: error paths only (HAPI down, an
amendment is one transaction so a lost race writes nothing, a signed note is never PUT, a
patient is never shown a draft)."""

from __future__ import annotations

import json
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


def _note(doc_status: str, **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "DocumentReference",
        "id": "n-1",
        "meta": {"versionId": "2"},
        "status": "current",
        "docStatus": doc_status,
        "subject": {"reference": "Patient/p-1"},
        "content": [{"attachment": {"contentType": "text/plain", "data": "aGk="}}],
        **fields,
    }


def _read(hapi: respx.MockRouter, note: dict[str, Any]) -> None:
    hapi.get(f"{TENANT_BASE}/DocumentReference/n-1").mock(
        return_value=httpx.Response(200, json=note)
    )


async def test_hapi_down_is_503(api: httpx.AsyncClient, hapi: respx.MockRouter) -> None:
    _read(hapi, _note("preliminary"))
    hapi.put(f"{TENANT_BASE}/DocumentReference/n-1").mock(side_effect=httpx.ConnectError("x"))
    hapi.post(TENANT_BASE).mock(side_effect=httpx.ConnectError("x"))
    _problem(await api.post("/api/patients/p-1/notes/n-1/sign"), 503, "fhir_unavailable")


async def test_signing_is_one_versioned_transaction_with_its_provenance(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    author = {"identifier": {"system": "urn:ehr:user", "value": str(caller.principal.subject)}}
    _read(hapi, _note("preliminary", author=[author]))
    put = hapi.put(f"{TENANT_BASE}/DocumentReference/n-1")
    signed = {**_note("final"), "meta": {"versionId": "3"}}
    transaction = hapi.post(TENANT_BASE).mock(
        return_value=httpx.Response(
            200,
            json={
                "resourceType": "Bundle",
                "type": "transaction-response",
                "entry": [
                    {"resource": signed, "response": {"status": "200 OK"}},
                    {
                        "resource": {"resourceType": "Provenance", "id": "pv-1"},
                        "response": {"status": "201 Created"},
                    },
                ],
            },
        )
    )
    response = await api.post("/api/patients/p-1/notes/n-1/sign")
    assert response.status_code == 200, response.text
    assert response.json()["version"] == "3"
    assert not put.called
    bundle = json.loads(transaction.calls.last.request.content)
    assert bundle["type"] == "transaction"
    update, provenance = bundle["entry"]
    assert update["request"] == {
        "method": "PUT",
        "url": "DocumentReference/n-1",
        "ifMatch": 'W/"2"',
    }
    assert provenance["request"]["method"] == "POST"
    record = provenance["resource"]
    assert record["target"] == [{"reference": "DocumentReference/n-1"}]
    assert record["signature"][0]["type"][0]["code"] == "1.2.840.10065.1.12.1.1"
    assert record["agent"][0]["who"]["identifier"] == author["identifier"]


async def test_a_signed_note_is_never_put(api: httpx.AsyncClient, hapi: respx.MockRouter) -> None:
    _read(hapi, _note("final"))
    put = hapi.put(f"{TENANT_BASE}/DocumentReference/n-1")
    response = await api.put(
        "/api/patients/p-1/notes/n-1", json={"text": "changed"}, headers={"If-Match": "2"}
    )
    _problem(response, 409, "note_signed_immutable")
    assert not put.called


async def test_another_users_draft_is_403_and_writes_nothing(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    other = {"identifier": {"system": "urn:ehr:user", "value": str(uuid.uuid4())}}
    _read(hapi, _note("preliminary", author=[other]))
    put = hapi.put(f"{TENANT_BASE}/DocumentReference/n-1")
    edit = await api.put(
        "/api/patients/p-1/notes/n-1", json={"text": "mine now"}, headers={"If-Match": "2"}
    )
    _problem(edit, 403, "note_not_author")
    _problem(await api.post("/api/patients/p-1/notes/n-1/entered-in-error"), 403, "note_not_author")
    assert not put.called
    assert "note:update" not in caller.actions


async def test_a_draft_edit_without_if_match_is_428_and_writes_nothing(
    api: httpx.AsyncClient, hapi: respx.MockRouter
) -> None:
    _read(hapi, _note("preliminary"))
    put = hapi.put(f"{TENANT_BASE}/DocumentReference/n-1")
    response = await api.put("/api/patients/p-1/notes/n-1", json={"text": "changed"})
    _problem(response, 428, "if_match_required")
    assert not put.called


async def test_an_amendment_is_one_versioned_transaction(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    _read(hapi, _note("final"))
    put = hapi.put(f"{TENANT_BASE}/DocumentReference/n-1")
    post = hapi.post(f"{TENANT_BASE}/DocumentReference")
    transaction = hapi.post(f"{TENANT_BASE}").mock(
        return_value=httpx.Response(
            409, json={"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}
        )
    )
    response = await api.post("/api/patients/p-1/notes/n-1/amend", json={"text": "fixed"})
    assert response.status_code in {409, 412}, response.text
    assert not put.called
    assert not post.called
    bundle = transaction.calls.last.request.content
    assert b'"ifMatch":"W/\\"2\\""' in bundle.replace(b" ", b"")
    assert "note:amend" not in caller.actions


async def test_a_patient_is_never_shown_a_draft(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    caller.principal = caller.make("patient", "p-1")
    draft = _note("preliminary")
    _read(hapi, draft)
    hapi.get(f"{TENANT_BASE}/DocumentReference").mock(
        return_value=httpx.Response(
            200,
            json={
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [
                    {"resource": draft, "search": {"mode": "match"}},
                    {"resource": {**_note("final"), "id": "n-2"}, "search": {"mode": "match"}},
                ],
            },
        )
    )
    assert (await api.get("/api/patients/p-1/notes/n-1")).status_code == 404
    listed = await api.get("/api/patients/p-1/notes")
    assert [n["id"] for n in listed.json()["items"]] == ["n-2"]
    assert caller.actions.count("note:list") == 1
    assert "note:read" not in caller.actions


def _searchset(*notes: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": n, "search": {"mode": "match"}} for n in notes],
    }


async def test_the_note_list_pages_by_a_keyset_cursor(
    api: httpx.AsyncClient, hapi: respx.MockRouter
) -> None:
    same = "2026-03-01T10:00:00Z"
    notes = [
        {**_note("final"), "id": "n-c", "date": same},
        {**_note("final"), "id": "n-a", "date": same},
        {**_note("final"), "id": "n-b", "date": same},
        {**_note("final"), "id": "n-old", "date": "2026-02-01T10:00:00Z"},
    ]
    search = hapi.get(f"{TENANT_BASE}/DocumentReference").mock(
        return_value=httpx.Response(200, json=_searchset(*notes))
    )
    first = await api.get("/api/patients/p-1/notes", params={"limit": 2})
    assert first.status_code == 200, first.text
    assert [n["id"] for n in first.json()["items"]] == ["n-c", "n-b"]
    cursor = first.json()["next"]
    assert cursor
    second = await api.get("/api/patients/p-1/notes", params={"limit": 2, "cursor": cursor})
    assert [n["id"] for n in second.json()["items"]] == ["n-a", "n-old"]
    assert second.json()["next"] is None
    query = search.calls.last.request.url.params
    assert query["date"] == "le2026-03-01T10:00:00Z"
    assert query["_count"] == "3"


async def test_a_cursor_is_sealed_to_its_list_filters(
    api: httpx.AsyncClient, hapi: respx.MockRouter
) -> None:
    notes = [
        {**_note("final"), "id": f"n-{i}", "date": f"2026-03-0{i}T10:00:00Z"} for i in (3, 2, 1)
    ]
    search = hapi.get(f"{TENANT_BASE}/DocumentReference").mock(
        return_value=httpx.Response(200, json=_searchset(*notes))
    )
    first = await api.get("/api/patients/p-1/notes", params={"limit": 1})
    cursor = first.json()["next"]
    assert cursor
    calls = search.call_count
    # The same cursor under another filter is not this list's: refused before HAPI is asked.
    _problem(
        await api.get(
            "/api/patients/p-1/notes", params={"limit": 1, "cursor": cursor, "doc_status": "final"}
        ),
        422,
        "invalid_note_cursor",
    )
    assert search.call_count == calls


async def test_a_bad_cursor_or_limit_is_422(api: httpx.AsyncClient, hapi: respx.MockRouter) -> None:
    search = hapi.get(f"{TENANT_BASE}/DocumentReference")
    _problem(
        await api.get("/api/patients/p-1/notes", params={"cursor": "not-a-cursor"}),
        422,
        "invalid_note_cursor",
    )
    assert (await api.get("/api/patients/p-1/notes", params={"limit": 201})).status_code == 422
    assert not search.called
