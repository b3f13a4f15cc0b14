"""The order-set routes against a respx-mocked HAPI: the paths the live tests cannot provoke
(HAPI down on instantiate: 503 and one transaction attempted, nothing else written), refusals
answered before any write (missing/stale If-Match, an invalid member), the install's idempotent
answer, and the audit note of an instantiation."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
from fastapi import FastAPI, Request
from support.in_process import ApiFactory
from support.settings import SettingsFactory

from ehr.core.error_handlers import PROBLEM_JSON
from ehr.entrypoints.api import create_app
from ehr.modules.order_sets import load_starter_sets
from ehr.modules.order_sets.schemas import OrderSetCreate
from ehr.modules.order_sets.service import OrderSetService
from ehr.platform.audit.dependencies import AuditTrail, get_phi_audit
from ehr.platform.auth.authorization import CONFIDENTIALITY_SYSTEM
from ehr.platform.auth.dependencies import get_current_principal
from ehr.platform.auth.principal import Principal
from ehr.platform.idempotency import Claim, Idempotency, StoredAnswer, get_idempotency

BASE = "http://127.0.0.1:9/fhir"  # tests/unit/conftest.py UNIT_FHIR_BASE
TENANT = "unit-tenant"
TENANT_BASE = f"{BASE}/{TENANT}"
PATIENT = {"resourceType": "Patient", "id": "p-1", "meta": {"versionId": "1"}}


def _principal(role: str) -> Principal:
    return Principal(
        kind="user",
        subject=uuid.uuid4(),
        tenant=TENANT,
        tenant_id=uuid.uuid4(),
        roles=frozenset({role}),
        username=f"unit.{role}",
    )


def _members() -> list[dict[str, Any]]:
    starter = load_starter_sets()[0]
    return [
        {"key": m.key, "order": m.model_dump(mode="json", exclude_none=True)["order"]}
        for m in starter.members[:2]
    ]


def _stored(version: str = "2", status: str = "active") -> dict[str, Any]:
    payload = OrderSetCreate.model_validate({"key": "k", "title": "T", "members": _members()})
    service = OrderSetService(None, principal=_principal("admin"))  # type: ignore[arg-type]
    resource = service._resource(payload, key="k", definition_version="1", starter=False)
    return resource | {"id": "pd-1", "meta": {"versionId": version}, "status": status}


class Caller:
    def __init__(self) -> None:
        self.principal = _principal("physician")


@pytest.fixture
def hapi() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


@pytest.fixture
def trails() -> list[AuditTrail]:
    return []


@pytest.fixture
def caller() -> Caller:
    return Caller()


@pytest.fixture
async def api(
    unit_settings: SettingsFactory, make_api: ApiFactory, trails: list[AuditTrail], caller: Caller
) -> httpx.AsyncClient:
    app: FastAPI = create_app(unit_settings())

    async def current() -> Principal:
        return caller.principal

    async def trail() -> AsyncIterator[AuditTrail]:
        audit = AuditTrail()
        trails.append(audit)
        yield audit

    app.dependency_overrides[get_current_principal] = current
    app.dependency_overrides[get_phi_audit] = trail
    client: httpx.AsyncClient = await make_api(app)
    return client


def _problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == code


async def test_hapi_down_on_instantiate_is_503_after_one_transaction(
    api: httpx.AsyncClient, hapi: respx.MockRouter, trails: list[AuditTrail]
) -> None:
    hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=PATIENT)
    hapi.get(f"{TENANT_BASE}/PlanDefinition/pd-1").respond(json=_stored())
    transaction = hapi.post(TENANT_BASE).mock(side_effect=httpx.ConnectError("refused"))
    response = await api.post("/api/patients/p-1/order-sets/pd-1/instantiate", json={})
    _problem(response, 503, "fhir_unavailable")
    assert transaction.call_count == 1
    assert [n for t in trails for n in t.notes] == []


async def test_instantiate_posts_one_bundle_and_audits_every_order(
    api: httpx.AsyncClient, hapi: respx.MockRouter, trails: list[AuditTrail]
) -> None:
    hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=PATIENT)
    hapi.get(f"{TENANT_BASE}/PlanDefinition/pd-1").respond(json=_stored())

    def answer(request: httpx.Request) -> httpx.Response:
        bundle = json.loads(request.content)
        entries = [
            {
                "response": {
                    "status": "201 Created",
                    "location": f"{e['request']['url']}/id-{i}/_history/1",
                }
            }
            for i, e in enumerate(bundle["entry"])
        ]
        return httpx.Response(
            200, json={"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
        )

    transaction = hapi.post(TENANT_BASE).mock(side_effect=answer)
    response = await api.post("/api/patients/p-1/order-sets/pd-1/instantiate")
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["request_group_id"] == "id-0"
    assert [o["id"] for o in result["orders"]] == ["id-1", "id-2"]
    sent = json.loads(transaction.calls.last.request.content)
    assert [e["resource"]["resourceType"] for e in sent["entry"]] == [
        "RequestGroup",
        *(o["resource_type"] for o in result["orders"]),
    ]
    notes = [n for t in trails for n in t.notes]
    assert [(n.action, n.resource_type, n.resource_id, n.patient_id) for n in notes] == [
        ("order_set:instantiate", "RequestGroup", "id-0", "p-1")
    ]
    assert notes[0].details["orders"] == [
        f"{o['resource_type']}/{o['id']}" for o in result["orders"]
    ]


async def test_update_without_if_match_is_428_before_any_read_or_write(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    caller.principal = _principal("admin")
    read = hapi.get(f"{TENANT_BASE}/PlanDefinition/pd-1").respond(json=_stored())
    write = hapi.put(f"{TENANT_BASE}/PlanDefinition/pd-1").respond(json=_stored("3"))
    body = {"title": "T2", "members": _members()}
    _problem(await api.put("/api/order-sets/pd-1", json=body), 428, "if_match_required")
    assert not read.called
    assert not write.called


async def test_stale_if_match_is_412_before_any_write(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    caller.principal = _principal("admin")
    hapi.get(f"{TENANT_BASE}/PlanDefinition/pd-1").respond(json=_stored("2"))
    write = hapi.put(f"{TENANT_BASE}/PlanDefinition/pd-1").respond(json=_stored("3"))
    body = {"title": "T2", "members": _members()}
    response = await api.put("/api/order-sets/pd-1", json=body, headers={"If-Match": 'W/"1"'})
    _problem(response, 412, "fhir_precondition_failed")
    assert not write.called


async def test_update_raises_the_business_version_and_sends_the_etag(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    caller.principal = _principal("admin")
    hapi.get(f"{TENANT_BASE}/PlanDefinition/pd-1").respond(json=_stored("2"))
    write = hapi.put(f"{TENANT_BASE}/PlanDefinition/pd-1").respond(json=_stored("3"))
    body = {"title": "T2", "members": _members()}
    response = await api.put("/api/order-sets/pd-1", json=body, headers={"If-Match": "2"})
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == 'W/"3"'
    sent = write.calls.last.request
    assert sent.headers["If-Match"] == 'W/"2"'
    resource = json.loads(sent.content)
    assert (resource["id"], resource["version"], resource["title"]) == ("pd-1", "2", "T2")


async def test_an_invalid_member_is_422_before_hapi_is_called(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    caller.principal = _principal("admin")
    transaction = hapi.post(TENANT_BASE).respond(json={})
    body = {"key": "k", "title": "T", "members": [{"key": "x", "order": {"kind": "lab"}}]}
    _problem(await api.post("/api/order-sets", json=body), 422, "validation_failed")
    assert not transaction.called


async def test_install_reports_created_and_existing_sets(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    caller.principal = _principal("admin")

    def answer(request: httpx.Request) -> httpx.Response:
        bundle = json.loads(request.content)
        assert all(e["request"]["ifNoneExist"].startswith("identifier=") for e in bundle["entry"])
        entries = [
            {
                "response": {
                    "status": "201 Created" if i == 0 else "200 OK",
                    "location": f"PlanDefinition/pd-{i}/_history/1",
                }
            }
            for i, _ in enumerate(bundle["entry"])
        ]
        return httpx.Response(
            200, json={"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
        )

    hapi.post(TENANT_BASE).mock(side_effect=answer)
    response = await api.post("/api/order-sets/install-starter-sets")
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["key"] for i in items] == [s.key for s in load_starter_sets()]
    assert [i["created"] for i in items] == [True] + [False] * (len(items) - 1)


async def test_roles(api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller) -> None:
    caller.principal = _principal("nurse")
    _problem(await api.post("/api/order-sets/install-starter-sets"), 403, "permission_denied")
    caller.principal = _principal("front_desk")
    _problem(await api.get("/api/order-sets"), 403, "permission_denied")
    _problem(
        await api.post("/api/patients/p-1/order-sets/pd-1/instantiate", json={}),
        403,
        "permission_denied",
    )


async def test_a_plan_definition_that_is_not_an_order_set_is_not_found(
    api: httpx.AsyncClient, hapi: respx.MockRouter
) -> None:
    other = {
        "resourceType": "PlanDefinition",
        "id": "pd-9",
        "type": {"coding": [{"code": "eca-rule"}]},
    }
    hapi.get(f"{TENANT_BASE}/PlanDefinition/pd-9").respond(json=other)
    _problem(await api.get("/api/order-sets/pd-9"), 404, "fhir_not_found")


async def test_an_encounter_of_another_patient_is_refused_before_the_transaction(
    api: httpx.AsyncClient, hapi: respx.MockRouter
) -> None:
    hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=PATIENT)
    hapi.get(f"{TENANT_BASE}/PlanDefinition/pd-1").respond(json=_stored())
    encounter = {"resourceType": "Encounter", "id": "e-1", "subject": {"reference": "Patient/p-2"}}
    hapi.get(f"{TENANT_BASE}/Encounter/e-1").respond(json=encounter)
    hapi.get(f"{TENANT_BASE}/Encounter/e-404").respond(
        404, json={"resourceType": "OperationOutcome"}
    )
    transaction = hapi.post(TENANT_BASE).respond(json={})
    url = "/api/patients/p-1/order-sets/pd-1/instantiate"
    for encounter_id in ("e-1", "e-404"):
        response = await api.post(url, json={"encounter_id": encounter_id})
        _problem(response, 422, "patient_mismatch")
    assert not transaction.called


async def test_a_member_naming_a_patient_is_refused(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    caller.principal = _principal("admin")
    transaction = hapi.post(TENANT_BASE).respond(json={})
    members = _members()
    members[0]["order"]["encounter_id"] = "e-1"
    body = {"key": "k", "title": "T", "members": members}
    response = await api.post("/api/order-sets", json=body)
    _problem(response, 422, "order_set_member_patient_specific")
    assert response.json()["member"] == members[0]["key"]
    assert not transaction.called


class MemoryStore:
    """The idempotency table's claim rules in memory (one tenant, no expiry)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    async def claim(self, tenant: str, key: str, fingerprint: str, *, now: Any, ttl: Any) -> Claim:
        row = self.rows.get(key)
        if row is None:
            self.rows[key] = {"fingerprint": fingerprint, "answer": None}
            return Claim(owned=True)
        return Claim(owned=False, fingerprint=row["fingerprint"], answer=row["answer"])

    async def complete(self, tenant: str, key: str, answer: StoredAnswer) -> None:
        self.rows[key]["answer"] = answer

    async def release(self, tenant: str, key: str) -> None:
        if self.rows.get(key, {}).get("answer") is None:
            self.rows.pop(key, None)


async def test_a_replay_is_given_only_to_a_caller_who_may_open_the_chart(
    unit_settings: SettingsFactory, make_api: ApiFactory, hapi: respx.MockRouter
) -> None:
    app: FastAPI = create_app(unit_settings())
    principal = _principal("physician")
    store = MemoryStore()

    async def current() -> Principal:
        return principal

    async def idempotency(request: Request) -> Idempotency:
        return Idempotency(
            store,
            principal=principal,
            key=request.headers.get("idempotency-key"),
            method=request.method,
            path=request.url.path,
            if_match=None,
        )

    async def trail() -> AsyncIterator[AuditTrail]:
        yield AuditTrail()

    app.dependency_overrides[get_current_principal] = current
    app.dependency_overrides[get_idempotency] = idempotency
    app.dependency_overrides[get_phi_audit] = trail
    api: httpx.AsyncClient = await make_api(app)
    patient = hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=PATIENT)
    hapi.get(f"{TENANT_BASE}/PlanDefinition/pd-1").respond(json=_stored())

    def answer(request: httpx.Request) -> httpx.Response:
        entries = [
            {"response": {"status": "201 Created", "location": f"{e['request']['url']}/id-{i}"}}
            for i, e in enumerate(json.loads(request.content)["entry"])
        ]
        return httpx.Response(200, json={"resourceType": "Bundle", "entry": entries})

    transaction = hapi.post(TENANT_BASE).mock(side_effect=answer)
    url = "/api/patients/p-1/order-sets/pd-1/instantiate"
    headers = {"Idempotency-Key": "unit-key-0001"}
    first = await api.post(url, json={}, headers=headers)
    again = await api.post(url, json={}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert transaction.call_count == 1
    # The patient became restricted since: the replay is refused like any access.
    restricted = {
        **PATIENT,
        "meta": {"security": [{"system": CONFIDENTIALITY_SYSTEM, "code": "R"}]},
    }
    patient.respond(json=restricted)
    refused = await api.post(url, json={}, headers=headers)
    assert refused.status_code == 403, refused.text
    assert transaction.call_count == 1


async def test_a_member_the_orders_module_refuses_keeps_its_code(
    api: httpx.AsyncClient, hapi: respx.MockRouter, caller: Caller
) -> None:
    caller.principal = _principal("admin")
    transaction = hapi.post(TENANT_BASE).respond(json={})
    members = _members()
    lab = next(m for m in members if m["order"]["kind"] == "lab")
    lab["order"]["code"] = {"system": "http://loinc.org", "code": "6598-8"}  # wrong check digit
    response = await api.post(
        "/api/order-sets", json={"key": "k", "title": "T", "members": members}
    )
    _problem(response, 422, "invalid_code")
    assert not transaction.called
