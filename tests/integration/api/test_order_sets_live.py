"""Order sets against the real HAPI, PostgreSQL and Redis, with real tokens of every role
(support.tenant_world): starter sets installed per tenant and idempotently, a tenant's own
definition (create, duplicate key, 428/412, update, retire), instantiation for a patient as one
transaction (RequestGroup + member drafts linked by group identifier and urn:uuid references),
overrides, bad input, tenancy, roles, break-glass and the PHI audit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support.hapi_data import delete_resources
from support.tenant_world import TenantWorld, World, open_world

from ehr.core.config import Settings
from ehr.core.db.models import AuditRecord
from ehr.core.error_handlers import PROBLEM_JSON
from ehr.fhir import TenantFhirClient
from ehr.modules.order_sets import load_starter_sets
from ehr.platform.auth.permissions import Role

pytestmark = pytest.mark.integration

STARTER_KEYS = sorted(s.key for s in load_starter_sets())


# Referrers first: a RequestGroup refers to its member orders and the patient (which the
# world's own clean-up deletes), and PlanDefinitions are not in its order.
ORDER_SET_TYPES = ("RequestGroup", "PlanDefinition")


@pytest.fixture(scope="module")
async def world(settings: Settings, run_id: str) -> AsyncIterator[World]:
    async with open_world(settings, f"{run_id}-o", ["osa", "osb"]) as made:
        try:
            yield made
        finally:
            for tenant in made.tenants.values():
                await delete_resources(made.fhir.for_tenant(tenant.slug), order=ORDER_SET_TYPES)


@pytest.fixture(scope="module")
def tenant(world: World) -> TenantWorld:
    return world.tenants["osa"]


def _fhir(world: World, tenant: TenantWorld) -> TenantFhirClient:
    return world.fhir.for_tenant(tenant.slug)


def _refused(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    if code is not None:
        assert response.json()["code"] == code, response.text


def _members(*wanted: str) -> list[dict[str, Any]]:
    """Member documents of the shipped sets (``kind``s in ``wanted`` order), keys a, b, ..."""
    found: list[dict[str, Any]] = []
    pool = [m for s in load_starter_sets() for m in s.members]
    for kind in wanted:
        member = next(m for m in pool if m.order.kind == kind and m not in found)  # type: ignore[union-attr]
        found.append(member)
    return [
        {
            "key": chr(ord("a") + i),
            "order": m.model_dump(mode="json", exclude_none=True)["order"],
        }
        for i, m in enumerate(found)
    ]


async def _installed(api: httpx.AsyncClient, tenant: TenantWorld) -> dict[str, str]:
    response = await api.post(
        "/api/order-sets/install-starter-sets", headers=tenant.auth(Role.ADMIN)
    )
    assert response.status_code == 200, response.text
    return {item["key"]: item["id"] for item in response.json()["items"]}


async def test_starter_sets_install_once_per_tenant(
    api: httpx.AsyncClient, world: World, tenant: TenantWorld
) -> None:
    other = world.tenants["osb"]
    first = await api.post("/api/order-sets/install-starter-sets", headers=tenant.auth(Role.ADMIN))
    assert first.status_code == 200, first.text
    again = await api.post("/api/order-sets/install-starter-sets", headers=tenant.auth(Role.ADMIN))
    assert again.status_code == 200, again.text
    assert sorted(i["key"] for i in first.json()["items"]) == STARTER_KEYS
    assert [i["created"] for i in again.json()["items"]] == [False] * len(STARTER_KEYS)
    assert {i["key"]: i["id"] for i in again.json()["items"]} == {
        i["key"]: i["id"] for i in first.json()["items"]
    }

    listed = await api.get("/api/order-sets", headers=tenant.auth(Role.PHYSICIAN))
    assert listed.status_code == 200, listed.text
    starters = [s for s in listed.json()["items"] if s["starter"]]
    assert sorted(s["key"] for s in starters) == STARTER_KEYS
    for shown in starters:
        assert shown["status"] == "active"
        assert shown["sources"]
        assert all(s["citation"] for s in shown["sources"])
        assert all(m["code"] and m["order"]["kind"] == m["kind"] for m in shown["members"])
    # Per tenant: the other tenant has none until it installs them.
    elsewhere = await api.get("/api/order-sets", headers=other.auth(Role.PHYSICIAN))
    assert elsewhere.status_code == 200
    assert [s for s in elsewhere.json()["items"] if s["starter"]] == []
    set_id = starters[0]["id"]
    _refused(
        await api.get(f"/api/order-sets/{set_id}", headers=other.auth(Role.PHYSICIAN)),
        404,
        "fhir_not_found",
    )

    stored = await _fhir(world, tenant).read("PlanDefinition", set_id)
    assert stored["type"]["coding"][0]["code"] == "order-set"
    assert stored["url"].startswith("urn:ehr:order-set:")
    assert all(a["extension"][0]["valueAttachment"]["contentType"] == "application/json"
               for a in stored["action"])  # fmt: skip


async def test_tenant_definition_lifecycle(
    api: httpx.AsyncClient, world: World, tenant: TenantWorld
) -> None:
    admin = tenant.auth(Role.ADMIN)
    body = {
        "key": "sepsis-lite",
        "title": "Sepsis screen (test)",
        "members": _members("lab", "medication"),
        "sources": [{"citation": "Test source", "url": "https://example.org/source"}],
    }
    created = await api.post("/api/order-sets", json=body, headers=admin)
    assert created.status_code == 201, created.text
    made = created.json()
    assert created.headers["location"] == f"/api/order-sets/{made['id']}"
    assert created.headers["etag"] == f'W/"{made["version"]}"'
    assert made["definition_version"] == "1"
    assert [m["key"] for m in made["members"]] == ["a", "b"]

    _refused(
        await api.post("/api/order-sets", json=body, headers=admin), 409, "order_set_key_taken"
    )
    broken = {**body, "key": "broken", "members": [{"key": "x", "order": {"kind": "lab"}}]}
    _refused(await api.post("/api/order-sets", json=broken, headers=admin), 422)
    twice = {**body, "key": "twice", "members": [body["members"][0], body["members"][0]]}
    _refused(
        await api.post("/api/order-sets", json=twice, headers=admin),
        422,
        "order_set_duplicate_member",
    )
    _refused(await api.post("/api/order-sets", json=body, headers=tenant.auth(Role.PHYSICIAN)), 403)

    url = f"/api/order-sets/{made['id']}"
    change = {k: v for k, v in body.items() if k != "key"} | {"title": "Sepsis screen v2"}
    _refused(await api.put(url, json=change, headers=admin), 428, "if_match_required")
    _refused(
        await api.put(url, json=change, headers={**admin, "If-Match": 'W/"99"'}),
        412,
        "fhir_precondition_failed",
    )
    updated = await api.put(
        url, json=change, headers={**admin, "If-Match": created.headers["etag"]}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["title"] == "Sepsis screen v2"
    assert updated.json()["definition_version"] == "2"
    read = await api.get(url, headers=tenant.auth(Role.NURSE))
    assert read.status_code == 200
    assert read.headers["etag"] == updated.headers["etag"]

    retired = await api.post(
        f"{url}/retire", headers={**admin, "If-Match": updated.headers["etag"]}
    )
    assert retired.status_code == 200, retired.text
    assert retired.json()["status"] == "retired"
    listed = await api.get("/api/order-sets", headers=tenant.auth(Role.PHYSICIAN))
    assert made["id"] not in [s["id"] for s in listed.json()["items"]]
    with_retired = await api.get(
        "/api/order-sets",
        params=[("status", "active"), ("status", "retired")],
        headers=tenant.auth(Role.PHYSICIAN),
    )
    assert made["id"] in [s["id"] for s in with_retired.json()["items"]]
    _refused(
        await api.put(url, json=change, headers={**admin, "If-Match": retired.headers["etag"]}),
        409,
        "order_set_retired",
    )
    patient_id = tenant.patient["id"]
    _refused(
        await api.post(
            f"/api/patients/{patient_id}/order-sets/{made['id']}/instantiate",
            json={},
            headers=tenant.auth(Role.PHYSICIAN),
        ),
        409,
        "order_set_retired",
    )


async def test_instantiate_writes_one_request_group_with_its_drafts(
    api: httpx.AsyncClient, world: World, tenant: TenantWorld, settings: Settings
) -> None:
    sets = await _installed(api, tenant)
    set_id = sets["community-acquired-pneumonia"]
    patient_id = tenant.patient["id"]
    definition = (
        await api.get(f"/api/order-sets/{set_id}", headers=tenant.auth(Role.PHYSICIAN))
    ).json()
    response = await api.post(
        f"/api/patients/{patient_id}/order-sets/{set_id}/instantiate",
        json={},
        headers=tenant.auth(Role.PHYSICIAN),
    )
    assert response.status_code == 201, response.text
    result = response.json()
    selected = [m for m in definition["members"] if m["selected"]]
    assert [o["member"] for o in result["orders"]] == [m["key"] for m in selected]
    assert result["instantiates"] == f"{definition['url']}|{definition['definition_version']}"

    fhir = _fhir(world, tenant)
    group = await fhir.read("RequestGroup", result["request_group_id"])
    assert (group["status"], group["intent"]) == ("draft", "order")
    assert group["instantiatesCanonical"] == [result["instantiates"]]
    assert group["subject"] == {"reference": f"Patient/{patient_id}"}
    system, value = result["group_identifier"].split("|")
    assert group["groupIdentifier"] == {"system": system, "value": value}
    assert [a["resource"]["reference"] for a in group["action"]] == [
        f"{o['resource_type']}/{o['id']}" for o in result["orders"]
    ]
    kinds = set()
    for order in result["orders"]:
        member = await fhir.read(order["resource_type"], order["id"])
        kinds.add(member["resourceType"])
        assert member["status"] == "draft"
        assert member["subject"] == {"reference": f"Patient/{patient_id}"}
        link = "groupIdentifier" if member["resourceType"] == "MedicationRequest" else "requisition"
        assert member[link] == group["groupIdentifier"]
        assert result["instantiates"] in member["instantiatesCanonical"]
    assert kinds == {"ServiceRequest", "MedicationRequest"}

    async with world.sessionmaker() as session:
        rows = list(
            await session.scalars(
                select(AuditRecord).where(
                    AuditRecord.tenant == tenant.slug,
                    AuditRecord.action == "order_set:instantiate",
                    AuditRecord.resource_id == result["request_group_id"],
                )
            )
        )
    assert len(rows) == 1
    assert rows[0].patient_id == patient_id
    assert rows[0].details["order_set_id"] == set_id
    assert len(rows[0].details["orders"]) == len(result["orders"])


async def test_instantiate_a_selection_with_overrides(
    api: httpx.AsyncClient, world: World, tenant: TenantWorld
) -> None:
    sets = await _installed(api, tenant)
    set_id = sets["chest-pain-workup"]
    definition = (
        await api.get(f"/api/order-sets/{set_id}", headers=tenant.auth(Role.NURSE))
    ).json()
    first, second = definition["members"][0], definition["members"][1]
    url = f"/api/patients/{tenant.patient['id']}/order-sets/{set_id}/instantiate"
    note = "Repeat at 3 hours (override from the test)"
    overrides = {first["key"]: {"note": note}}
    body = {"members": [first["key"], second["key"]], "overrides": overrides}
    response = await api.post(url, json=body, headers=tenant.auth(Role.NURSE))
    assert response.status_code == 201, response.text
    orders = response.json()["orders"]
    assert [o["member"] for o in orders] == [first["key"], second["key"]]
    changed = await _fhir(world, tenant).read(orders[0]["resource_type"], orders[0]["id"])
    assert note in str(changed.get("note"))

    headers = tenant.auth(Role.PHYSICIAN)
    for request, code in (
        ({"members": ["no-such-member"]}, "order_set_unknown_member"),
        ({"members": []}, "order_set_empty_selection"),
        (
            {"members": [first["key"]], "overrides": {second["key"]: {"note": "x"}}},
            "order_set_override_not_selected",
        ),
        (
            {"members": [first["key"]], "overrides": {first["key"]: {"kind": "medication"}}},
            "order_set_override_changes_kind",
        ),
        (
            {"members": [first["key"]], "overrides": {first["key"]: {"no_such_field": 1}}},
            "order_set_member_invalid",
        ),
    ):
        _refused(await api.post(url, json=request, headers=headers), 422, code)


async def test_who_may_instantiate_and_for_whom(
    api: httpx.AsyncClient, world: World, tenant: TenantWorld
) -> None:
    sets = await _installed(api, tenant)
    set_id = sets["dka-labs"]
    patient_id = tenant.patient["id"]
    url = f"/api/patients/{patient_id}/order-sets/{set_id}/instantiate"
    for role in (Role.FRONT_DESK, Role.BILLING, Role.LAB_TECHNICIAN, Role.PATIENT, Role.ADMIN):
        _refused(await api.post(url, json={}, headers=tenant.auth(role)), 403)
    for role in (Role.FRONT_DESK, Role.BILLING, Role.PATIENT):
        _refused(await api.get("/api/order-sets", headers=tenant.auth(role)), 403)
    # Another tenant's patient, and this tenant's set from another tenant: not found.
    other = world.tenants["osb"]
    foreign = f"/api/patients/{other.patient['id']}/order-sets/{set_id}/instantiate"
    _refused(await api.post(foreign, json={}, headers=tenant.auth(Role.PHYSICIAN)), 404)
    _refused(await api.post(url.replace(patient_id, other.patient["id"]), json={},
                            headers=other.auth(Role.PHYSICIAN)), 404)  # fmt: skip
    # A restricted patient needs break-glass.
    restricted = f"/api/patients/{tenant.restricted['id']}/order-sets/{set_id}/instantiate"
    closed = await api.post(restricted, json={}, headers=tenant.auth(Role.PHYSICIAN))
    assert closed.status_code == 403, closed.text
    opened = await api.post(
        restricted,
        json={},
        headers={
            **tenant.auth(Role.PHYSICIAN),
            "X-Break-Glass-Reason": "Emergency: chest pain workup",
        },
    )
    assert opened.status_code == 201, opened.text


async def test_instantiate_for_an_encounter_of_the_patient(
    api: httpx.AsyncClient, world: World, tenant: TenantWorld
) -> None:
    sets = await _installed(api, tenant)
    fhir = _fhir(world, tenant)
    patient_id = tenant.patient["id"]
    encounter = await fhir.create(
        {
            "resourceType": "Encounter",
            "status": "in-progress",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "EMER",
            },
            "subject": {"reference": f"Patient/{patient_id}"},
        }
    )
    url = f"/api/patients/{patient_id}/order-sets/{sets['dka-labs']}/instantiate"
    headers = tenant.auth(Role.PHYSICIAN)
    response = await api.post(url, json={"encounter_id": encounter["id"]}, headers=headers)
    assert response.status_code == 201, response.text
    for order in response.json()["orders"]:
        member = await fhir.read(order["resource_type"], order["id"])
        assert member["encounter"] == {"reference": f"Encounter/{encounter['id']}"}
    other = world.tenants["osa"].restricted["id"]
    elsewhere = await fhir.create(
        {**{k: v for k, v in encounter.items() if k not in ("id", "meta")},
         "subject": {"reference": f"Patient/{other}"}}
    )  # fmt: skip
    refused = await api.post(url, json={"encounter_id": elsewhere["id"]}, headers=headers)
    _refused(refused, 422, "patient_mismatch")
    await fhir.delete("Encounter", elsewhere["id"])


async def test_a_retried_instantiation_is_answered_once(
    api: httpx.AsyncClient, world: World, tenant: TenantWorld
) -> None:
    sets = await _installed(api, tenant)
    patient_id = tenant.patient["id"]
    url = f"/api/patients/{patient_id}/order-sets/{sets['chest-pain-workup']}/instantiate"
    headers = {**tenant.auth(Role.PHYSICIAN), "Idempotency-Key": f"retry-{uuid.uuid4()}"}
    first = await api.post(url, json={}, headers=headers)
    again = await api.post(url, json={}, headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    identifier = first.json()["group_identifier"]
    groups = await _fhir(world, tenant).search(
        "RequestGroup", {"subject": f"Patient/{patient_id}", "_count": "200"}
    )
    matching = [
        e["resource"]
        for e in groups.get("entry") or []
        if e["resource"]["groupIdentifier"]["value"] == identifier.split("|")[1]
    ]
    assert len(matching) == 1
    other_body = await api.post(url, json={"members": ["ecg"]}, headers=headers)
    _refused(other_body, 422, "idempotency_key_reused")


async def test_instantiated_drafts_are_orders_the_orders_api_lists_and_signs(
    api: httpx.AsyncClient, tenant: TenantWorld
) -> None:
    sets = await _installed(api, tenant)
    patient_id = tenant.patient["id"]
    physician = tenant.auth(Role.PHYSICIAN)
    made = await api.post(
        f"/api/patients/{patient_id}/order-sets/{sets['community-acquired-pneumonia']}/instantiate",
        json={"members": ["chest-x-ray", "ceftriaxone"]},
        headers=physician,
    )
    assert made.status_code == 201, made.text
    ids = [f"{o['resource_type']}-{o['id']}" for o in made.json()["orders"]]
    listed = await api.get(
        f"/api/patients/{patient_id}/orders", params={"status": "draft"}, headers=physician
    )
    assert listed.status_code == 200, listed.text
    assert set(ids) <= {o["id"] for o in listed.json()["items"]}
    for order_id in ids:
        url = f"/api/patients/{patient_id}/orders/{order_id}"
        read = await api.get(url, headers=physician)
        assert read.status_code == 200, read.text
        assert read.json()["status"] == "draft"
        signed = await api.post(
            f"{url}/sign", json={}, headers={**physician, "If-Match": read.headers["etag"]}
        )
        assert signed.status_code == 200, signed.text
        assert signed.json()["order"]["status"] == "active"
