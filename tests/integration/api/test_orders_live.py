"""Orders against the real HAPI, PostgreSQL and Redis, with real tokens of every role
(support.tenant_world): drafts, the lifecycle, signing with the medication-safety engine (a real
interacting pair: warfarin active, ibuprofen ordered) and the duplicate-order check — blocked,
then overridden with a DetectedIssue and a Provenance written in the order's transaction —,
Idempotency-Key (a retried create or sign never writes twice), two clinicians signing the same
draft at once, bad input, tenancy, roles and the PHI audit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support.cds import new_client_key, register_cds_client, remove_cds_clients, signed_headers
from support.hapi_data import delete_resources
from support.tenant_world import TenantWorld, World, open_world

from ehr.core.config import Settings
from ehr.core.db.models import AuditRecord
from ehr.core.error_handlers import PROBLEM_JSON
from ehr.fhir import TenantFhirClient, bundle_resources
from ehr.modules.orders import SIGN_OVERRIDES
from ehr.platform.auth.permissions import Role

pytestmark = pytest.mark.integration

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
WARFARIN_5MG_TABLET = "855332"
IBUPROFEN_600MG_TABLET = "197806"
# Referrers first: DetectedIssues refer to the orders and the patient (the world's own clean-up
# deletes Provenance, the orders and the patients after these).
ORDER_TYPES = ("DetectedIssue",)


@pytest.fixture(scope="module")
async def world(settings: Settings, run_id: str) -> AsyncIterator[World]:
    async with open_world(settings, f"{run_id}-r", ["ora", "orb"]) as made:
        try:
            yield made
        finally:
            for tenant in made.tenants.values():
                await delete_resources(made.fhir.for_tenant(tenant.slug), order=ORDER_TYPES)


@pytest.fixture(scope="module")
def tenant(world: World) -> TenantWorld:
    return world.tenants["ora"]


def _fhir(world: World, tenant: TenantWorld) -> TenantFhirClient:
    return world.fhir.for_tenant(tenant.slug)


def _path(patient_id: str, suffix: str = "") -> str:
    return f"/api/patients/{patient_id}/orders{suffix}"


def _refused(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    if code is not None:
        assert body["code"] == code, response.text
    return body


def _lab(code: str = "2823-3", **extra: Any) -> dict[str, Any]:
    return {"kind": "lab", "code": {"system": LOINC, "code": code, "display": "Potassium"}, **extra}


def _ibuprofen() -> dict[str, Any]:
    return {
        "kind": "medication",
        "medication": {"system": RXNORM, "code": IBUPROFEN_600MG_TABLET, "display": "ibuprofen"},
        "dosage": {
            "dose": {"value": 600, "unit": "mg"},
            "route": {"system": SNOMED, "code": "26643006", "display": "Oral"},
            "frequency": 3,
            "period": 1,
            "period_unit": "d",
        },
        "dispense": {"quantity": {"value": 30, "unit": "{tbl}"}, "supply_days": 10},
        "repeats": 0,
    }


async def _patient(world: World, tenant: TenantWorld, label: str) -> str:
    created = await _fhir(world, tenant).create(
        {
            "resourceType": "Patient",
            "meta": {"tag": [{"system": "urn:ehr:test", "code": world.run}]},
            "name": [{"family": f"Zzorders{label}{world.run.replace('-', '')}"}],
            "gender": "female",
            "birthDate": "1950-01-01",
        }
    )
    return str(created["id"])


async def _on_warfarin(world: World, tenant: TenantWorld, patient_id: str) -> str:
    created = await _fhir(world, tenant).create(
        {
            "resourceType": "MedicationRequest",
            "meta": {"tag": [{"system": "urn:ehr:test", "code": world.run}]},
            "status": "active",
            "intent": "order",
            "subject": {"reference": f"Patient/{patient_id}"},
            "medicationCodeableConcept": {
                "coding": [{"system": RXNORM, "code": WARFARIN_5MG_TABLET}]
            },
        }
    )
    return f"MedicationRequest/{created['id']}"


async def _draft(
    api: httpx.AsyncClient, tenant: TenantWorld, patient_id: str, body: dict[str, Any]
) -> httpx.Response:
    response = await api.post(_path(patient_id), json=body, headers=tenant.auth(Role.PHYSICIAN))
    assert response.status_code == 201, response.text
    return response


def _key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def _audit(world: World, tenant: TenantWorld, action: str) -> list[AuditRecord]:
    async with world.sessionmaker() as session:
        return list(
            await session.scalars(
                select(AuditRecord).where(
                    AuditRecord.tenant == tenant.slug, AuditRecord.action == action
                )
            )
        )


async def _provenance_of(world: World, tenant: TenantWorld, reference: str) -> list[dict[str, Any]]:
    bundle = await _fhir(world, tenant).search("Provenance", {"target": reference})
    return bundle_resources(bundle, "Provenance")


# --------------------------------------------------------------------------- drafts, lifecycle


async def test_a_lab_order_from_draft_to_entered_in_error(
    api: httpx.AsyncClient, world: World, tenant: TenantWorld
) -> None:
    patient_id = await _patient(world, tenant, "life")
    doctor = tenant.auth(Role.PHYSICIAN)
    created = await _draft(api, tenant, patient_id, _lab("2345-7", priority="stat"))
    order = created.json()
    assert (order["kind"], order["status"], order["intent"]) == ("lab", "draft", "order")
    assert order["code"] == {"system": LOINC, "code": "2345-7", "display": "Potassium"}
    assert created.headers["location"] == _path(patient_id, f"/{order['id']}")
    path = _path(patient_id, f"/{order['id']}")

    read = await api.get(path, headers=doctor)
    assert read.status_code == 200, read.text
    etag = read.headers["etag"]

    edited_body = _lab("2345-7", priority="routine", note="fasting")
    _refused(await api.put(path, json=edited_body, headers=doctor), 428, "if_match_required")
    _refused(await api.put(path, json=edited_body, headers={**doctor, "If-Match": 'W/"99"'}), 412)
    _refused(
        await api.put(path, json=_ibuprofen(), headers={**doctor, "If-Match": etag}),
        422,
        "order_kind_mismatch",
    )
    edited = await api.put(path, json=edited_body, headers={**doctor, "If-Match": etag})
    assert edited.status_code == 200, edited.text
    assert edited.json()["priority"] == "routine"

    _refused(await api.post(f"{path}/sign", json={}, headers=doctor), 428, "if_match_required")
    signed = await api.post(
        f"{path}/sign", json={}, headers={**doctor, "If-Match": edited.headers["etag"]}
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["order"]["status"] == "active"
    assert signed.json()["findings"] == []
    provenance = signed.json()["provenance"]
    assert provenance is not None

    stale_edit = await api.put(
        path, json=edited_body, headers={**doctor, "If-Match": signed.headers["etag"]}
    )
    _refused(stale_edit, 409, "order_not_draft")

    held = await api.post(f"{path}/hold", json={"reason": "patient away"}, headers=doctor)
    assert held.status_code == 200, held.text
    assert held.json()["status"] == "on-hold"
    assert held.json()["status_reason"] == "patient away"
    _refused(await api.post(f"{path}/hold", headers=doctor), 409, "order_transition_not_allowed")
    _refused(
        await api.post(f"{path}/complete", headers=doctor), 409, "order_transition_not_allowed"
    )
    resumed = await api.post(f"{path}/resume", headers=doctor)
    assert resumed.json()["status"] == "active"
    completed = await api.post(f"{path}/complete", headers=doctor)
    assert completed.json()["status"] == "completed"
    refusal = _refused(
        await api.post(f"{path}/revoke", json={"reason": "late"}, headers=doctor),
        409,
        "order_transition_not_allowed",
    )
    assert refusal["order_status"] == "completed"
    erred = await api.post(f"{path}/entered-in-error", headers=doctor)
    assert erred.json()["status"] == "entered-in-error"

    listed = await api.get(_path(patient_id), headers=doctor)
    assert [o["id"] for o in listed.json()["items"]] == []
    shown = await api.get(_path(patient_id), params={"status": "entered-in-error"}, headers=doctor)
    assert [o["id"] for o in shown.json()["items"]] == [order["id"]]

    # Every transition wrote its Provenance with the order, in one transaction each.
    activities = sorted(
        next(c["code"] for c in p["activity"]["coding"] if c["system"] == "urn:ehr:order-activity")
        for p in await _provenance_of(world, tenant, order["resource"])
    )
    assert activities == ["complete", "entered-in-error", "hold", "resume", "sign"]


async def test_revoking_needs_a_reason_and_lists_filter_and_page(
    api: httpx.AsyncClient, world: World, tenant: TenantWorld
) -> None:
    patient_id = await _patient(world, tenant, "list")
    doctor = tenant.auth(Role.PHYSICIAN)
    lab = (await _draft(api, tenant, patient_id, _lab("718-7"))).json()
    imaging = (
        await _draft(
            api,
            tenant,
            patient_id,
            {
                "kind": "imaging",
                "code": {"system": "http://www.ama-assn.org/go/cpt", "code": "71046"},
                "body_site": {"system": SNOMED, "code": "51185008", "display": "Thorax"},
                "reason": [{"system": SNOMED, "code": "29857009", "display": "Chest pain"}],
            },
        )
    ).json()
    referral = (
        await _draft(
            api,
            tenant,
            patient_id,
            {
                "kind": "referral",
                "specialty": {"system": SNOMED, "code": "394579002", "display": "Cardiology"},
                "performer": {"display": "Cardiology clinic"},
                "reason": [{"system": SNOMED, "code": "29857009"}],
            },
        )
    ).json()
    assert referral["detail"]["specialty"]["code"] == "394579002"
    assert imaging["detail"]["body_site"]["code"] == "51185008"
    path = _path(patient_id, f"/{lab['id']}")
    _refused(await api.post(f"{path}/revoke", headers=doctor), 422, "order_reason_required")
    revoked = await api.post(f"{path}/revoke", json={"reason": "wrong test"}, headers=doctor)
    assert revoked.json()["status"] == "revoked"

    kinds = await api.get(
        _path(patient_id), params={"kind": ["imaging", "referral"]}, headers=doctor
    )
    assert sorted(o["kind"] for o in kinds.json()["items"]) == ["imaging", "referral"]
    drafts = await api.get(_path(patient_id), params={"status": "revoked"}, headers=doctor)
    assert [o["id"] for o in drafts.json()["items"]] == [lab["id"]]
    first = await api.get(_path(patient_id), params={"limit": 2}, headers=doctor)
    assert len(first.json()["items"]) == 2
    rest = await api.get(
        _path(patient_id), params={"limit": 2, "cursor": first.json()["next"]}, headers=doctor
    )
    seen = [o["id"] for o in first.json()["items"] + rest.json()["items"]]
    assert sorted(seen) == sorted([lab["id"], imaging["id"], referral["id"]])
    assert rest.json()["next"] is None


# --------------------------------------------------------------------------- signing checks


async def test_an_interacting_medication_is_blocked_then_signed_with_an_override(
    api: httpx.AsyncClient, world: World, tenant: TenantWorld
) -> None:
    patient_id = await _patient(world, tenant, "med")
    warfarin = await _on_warfarin(world, tenant, patient_id)
    order = (await _draft(api, tenant, patient_id, _ibuprofen())).json()
    assert order["kind"] == "medication"
    assert order["detail"]["dosage_instruction"]["doseAndRate"][0]["doseQuantity"]["code"] == "mg"
    path = _path(patient_id, f"/{order['id']}")
    etag = {"If-Match": (await api.get(path, headers=tenant.auth(Role.PHYSICIAN))).headers["etag"]}

    # Nurses draft but never sign (order:place is a physician's; a medication needs prescribing).
    _refused(
        await api.post(f"{path}/sign", json={}, headers={**tenant.auth(Role.NURSE), **etag}), 403
    )

    doctor = {**tenant.auth(Role.PHYSICIAN), **etag}
    blocked = _refused(
        await api.post(f"{path}/sign", json={}, headers=doctor), 409, "order-sign-blocked"
    )
    interruptive = [f for f in blocked["findings"] if f["display"] == "interruptive"]
    assert interruptive, blocked
    assert order["resource"] in interruptive[0]["implicated"]
    assert warfarin in interruptive[0]["implicated"]
    rule = interruptive[0]["rule"]
    stored = await _fhir(world, tenant).read("MedicationRequest", order["resource"].split("/")[1])
    assert stored["status"] == "draft"  # nothing written by a blocked sign

    partial = await api.post(
        f"{path}/sign",
        json={"override": {"reason": "INR monitored", "rules": ["some-other-rule"]}},
        headers=doctor,
    )
    assert _refused(partial, 409, "order-sign-blocked")["not_overridden"] == sorted(
        {f["rule"] for f in interruptive}
    )

    before = SIGN_OVERRIDES.labels(rule=rule)._value.get()
    key = _key()
    body = {"override": {"reason": "Short course; INR checked in 3 days"}}
    signed = await api.post(f"{path}/sign", json=body, headers={**doctor, **key})
    assert signed.status_code == 200, signed.text
    result = signed.json()
    assert result["order"]["status"] == "active"
    assert result["order"]["requester"]["user_id"] == str(tenant.users[Role.PHYSICIAN])
    assert len(result["overridden"]) == len(interruptive)
    assert SIGN_OVERRIDES.labels(rule=rule)._value.get() == before + 1

    # The retried sign (same key, same body) is the first answer replayed: no second sign.
    again = await api.post(f"{path}/sign", json=body, headers={**doctor, **key})
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == result
    _refused(
        await api.post(
            f"{path}/sign", json={"override": {"reason": "other"}}, headers={**doctor, **key}
        ),
        422,
        "idempotency_key_reused",
    )
    # A fresh key cannot sign twice either: the order is no longer a draft.
    _refused(
        await api.post(f"{path}/sign", json=body, headers={**doctor, **_key()}),
        409,
        "order_transition_not_allowed",
    )

    fhir = _fhir(world, tenant)
    issue = await fhir.read("DetectedIssue", result["overridden"][0].split("/")[1])
    assert issue["implicated"][0] == {"reference": order["resource"]}
    assert issue["patient"] == {"reference": f"Patient/{patient_id}"}
    assert any(c["code"] == rule for c in issue["code"]["coding"])
    assert issue["mitigation"][0]["action"]["text"] == body["override"]["reason"]
    assert issue["mitigation"][0]["author"]["identifier"]["value"] == str(
        tenant.users[Role.PHYSICIAN]
    )
    provenance = await _provenance_of(world, tenant, order["resource"])
    assert len(provenance) == 1
    assert provenance[0]["agent"][0]["who"]["identifier"]["value"] == str(
        tenant.users[Role.PHYSICIAN]
    )
    assert {c["code"] for c in provenance[0]["activity"]["coding"]} == {"UPDATE", "sign"}

    records = [r for r in await _audit(world, tenant, "order:sign") if r.patient_id == patient_id]
    succeeded = [r for r in records if (r.details or {}).get("overridden_rules")]
    assert len(succeeded) == 1
    assert rule in succeeded[0].details["overridden_rules"]
    assert any(r.outcome != "success" for r in records)  # the blocked attempts are audited too


async def test_a_duplicate_lab_is_blocked_unless_the_repeat_is_confirmed(
    api: httpx.AsyncClient, world: World, tenant: TenantWorld
) -> None:
    patient_id = await _patient(world, tenant, "dup")
    doctor = tenant.auth(Role.PHYSICIAN)
    first = (await _draft(api, tenant, patient_id, _lab("2823-3"))).json()
    first_path = _path(patient_id, f"/{first['id']}")
    signed = await api.post(f"{first_path}/sign", json={}, headers={**doctor, "If-Match": 'W/"1"'})
    assert signed.status_code == 200, signed.text

    second = (await _draft(api, tenant, patient_id, _lab("2823-3"))).json()
    path = _path(patient_id, f"/{second['id']}")
    headers = {**doctor, "If-Match": 'W/"1"'}
    blocked = _refused(
        await api.post(f"{path}/sign", json={}, headers=headers), 409, "order-sign-blocked"
    )
    assert blocked["findings"][0]["rule"] == "order:duplicate-order"
    assert first["resource"] in blocked["findings"][0]["implicated"]
    confirmed = await api.post(
        f"{path}/sign",
        json={"override": {"reason": "Repeat after K+ replacement"}},
        headers=headers,
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["findings"][0]["rule"] == "order:duplicate-order"
    assert len(confirmed.json()["overridden"]) == 1


async def test_a_daily_methotrexate_order_is_blocked_by_its_weekly_dose_limit(
    api: httpx.AsyncClient, world: World, tenant: TenantWorld
) -> None:
    patient_id = await _patient(world, tenant, "mtx")
    daily = {
        **_ibuprofen(),
        "medication": {"system": RXNORM, "code": "105585", "display": "methotrexate 2.5 mg"},
        "dosage": {
            "dose": {"value": 1, "unit": "{tbl}"},
            "route": {"system": SNOMED, "code": "26643006", "display": "Oral"},
            "frequency": 1,
            "period": 1,
            "period_unit": "d",
        },
    }
    order = (await _draft(api, tenant, patient_id, daily)).json()
    path = _path(patient_id, f"/{order['id']}")
    etag = {"If-Match": (await api.get(path, headers=tenant.auth(Role.PHYSICIAN))).headers["etag"]}
    blocked = _refused(
        await api.post(f"{path}/sign", json={}, headers={**tenant.auth(Role.PHYSICIAN), **etag}),
        409,
        "order-sign-blocked",
    )
    rules = {f["rule"]: f for f in blocked["findings"]}
    assert rules["DOSE-METHOTREXATE"]["display"] == "interruptive"
    assert "7 doses a week" in rules["DOSE-METHOTREXATE"]["summary"]

    # The same tablet once weekly is the labelled regimen: it signs without an override.
    weekly = {**daily, "dosage": {**daily["dosage"], "period": 1, "period_unit": "wk"}}
    order = (await _draft(api, tenant, patient_id, weekly)).json()
    path = _path(patient_id, f"/{order['id']}")
    etag = {"If-Match": (await api.get(path, headers=tenant.auth(Role.PHYSICIAN))).headers["etag"]}
    signed = await api.post(
        f"{path}/sign", json={}, headers={**tenant.auth(Role.PHYSICIAN), **etag}
    )
    assert signed.status_code == 200, signed.text


async def test_two_clinicians_signing_the_same_draft_at_once_sign_it_once(
    api: httpx.AsyncClient, world: World, tenant: TenantWorld
) -> None:
    patient_id = await _patient(world, tenant, "race")
    order = (await _draft(api, tenant, patient_id, _lab("6598-7"))).json()
    path = _path(patient_id, f"/{order['id']}/sign")
    headers = {**tenant.auth(Role.PHYSICIAN), "If-Match": 'W/"1"'}
    answers = await asyncio.gather(
        *(api.post(path, json={}, headers={**headers, **_key()}) for _ in range(2))
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses[0] == 200, [a.text for a in answers]
    assert statuses[1] in (409, 412), [a.text for a in answers]
    assert len(await _provenance_of(world, tenant, order["resource"])) == 1


# --------------------------------------------------------------------------- idempotent create


async def test_a_retried_create_with_the_same_key_creates_one_order(
    api: httpx.AsyncClient, world: World, tenant: TenantWorld
) -> None:
    patient_id = await _patient(world, tenant, "idem")
    headers = {**tenant.auth(Role.PHYSICIAN), **_key()}
    first = await api.post(_path(patient_id), json=_lab("2951-2"), headers=headers)
    again = await api.post(_path(patient_id), json=_lab("2951-2"), headers=headers)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    _refused(
        await api.post(_path(patient_id), json=_lab("2823-3"), headers=headers),
        422,
        "idempotency_key_reused",
    )
    found = await _fhir(world, tenant).search(
        "ServiceRequest", {"subject": f"Patient/{patient_id}"}
    )
    assert len(bundle_resources(found, "ServiceRequest")) == 1
    # Another user's identical key is another key.
    nurse = {**tenant.auth(Role.NURSE), "Idempotency-Key": headers["Idempotency-Key"]}
    other = await api.post(_path(patient_id), json=_lab("2951-2"), headers=nurse)
    assert other.status_code == 201, other.text
    assert other.json()["id"] != first.json()["id"]


# --------------------------------------------------------------------------- bad input, tenancy


async def test_bad_codes_and_foreign_references_are_refused(
    api: httpx.AsyncClient, world: World, tenant: TenantWorld
) -> None:
    patient_id = await _patient(world, tenant, "bad")
    other_patient = await _patient(world, tenant, "bad2")
    doctor = tenant.auth(Role.PHYSICIAN)
    url = _path(patient_id)
    bad_system = {"kind": "lab", "code": {"system": "http://example.org", "code": "K"}}
    _refused(await api.post(url, json=bad_system, headers=doctor), 422, "unknown_code_system")
    _refused(await api.post(url, json=_lab("2823-4"), headers=doctor), 422, "invalid_code")
    bad_unit = _ibuprofen()
    bad_unit["dosage"]["dose"]["unit"] = "spoonful"
    _refused(await api.post(url, json=bad_unit, headers=doctor), 422, "unit_not_allowed")
    _refused(await api.post(url, json={"kind": "diet"}, headers=doctor), 422)
    _refused(
        await api.post(url, json=_lab(patient_id=other_patient), headers=doctor),
        422,
        "patient_mismatch",
    )
    encounter = await _fhir(world, tenant).create(
        {
            "resourceType": "Encounter",
            "meta": {"tag": [{"system": "urn:ehr:test", "code": world.run}]},
            "status": "in-progress",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "AMB",
            },
            "subject": {"reference": f"Patient/{other_patient}"},
        }
    )
    _refused(
        await api.post(url, json=_lab(encounter_id=encounter["id"]), headers=doctor),
        422,
        "order_encounter_invalid",
    )
    referral = {
        "kind": "referral",
        "specialty": {"system": SNOMED, "code": "394579002"},
        "performer": {"reference": "Practitioner/does-not-exist"},
        "reason": [{"system": SNOMED, "code": "29857009"}],
    }
    _refused(await api.post(url, json=referral, headers=doctor), 422, "order_reference_invalid")

    # Another patient's order through this patient's path, another tenant's order: 404.
    mine = (await _draft(api, tenant, patient_id, _lab())).json()
    _refused(await api.get(_path(other_patient, f"/{mine['id']}"), headers=doctor), 404)
    elsewhere = world.tenants["orb"]
    _refused(
        await api.get(_path(patient_id, f"/{mine['id']}"), headers=elsewhere.auth(Role.PHYSICIAN)),
        404,
    )
    _refused(await api.get(_path(patient_id, "/Observation-1"), headers=doctor), 422)


async def test_roles_get_what_they_may(
    api: httpx.AsyncClient, world: World, tenant: TenantWorld
) -> None:
    patient_id = str(tenant.patient["id"])
    drafted = await api.post(
        _path(patient_id), json=_lab("2160-0"), headers=tenant.auth(Role.NURSE)
    )
    assert drafted.status_code == 201, drafted.text
    order_id = drafted.json()["id"]
    sign = _path(patient_id, f"/{order_id}/sign")
    _refused(
        await api.post(sign, json={}, headers={**tenant.auth(Role.NURSE), "If-Match": 'W/"1"'}),
        403,
    )
    for role in (Role.FRONT_DESK, Role.BILLING):
        _refused(await api.get(_path(patient_id), headers=tenant.auth(role)), 403)
        _refused(await api.post(_path(patient_id), json=_lab(), headers=tenant.auth(role)), 403)
    technician = await api.get(_path(patient_id), headers=tenant.auth(Role.LAB_TECHNICIAN))
    assert technician.status_code == 200, technician.text
    _refused(
        await api.post(_path(patient_id), json=_lab(), headers=tenant.auth(Role.LAB_TECHNICIAN)),
        403,
    )
    # The role table gives patients no order:read (yet): the portal sees no orders.
    _refused(await api.get(_path(patient_id), headers=tenant.auth(Role.PATIENT)), 403)
    records = await _audit(world, tenant, "order:create")
    assert any(r.resource_id == order_id.split("-", 1)[1] for r in records)


async def test_the_order_policy_is_the_tenant_admins(api: httpx.AsyncClient, world: World) -> None:
    other = world.tenants["orb"]
    admin = other.auth(Role.ADMIN)
    shown = await api.get("/api/order-policy", headers=admin)
    assert shown.status_code == 200, shown.text
    assert shown.json()["is_default"] is True
    assert shown.json()["lab_duplicate_window_hours"] == 24
    _refused(await api.get("/api/order-policy", headers=other.auth(Role.PHYSICIAN)), 403)
    policy = {
        "lab_duplicate_window_hours": 0,
        "imaging_duplicate_window_hours": 48,
        "referral_duplicate_window_hours": 24,
        "duplicate_display": "passive",
    }
    _refused(
        await api.put(
            "/api/order-policy", json={**policy, "lab_duplicate_window_hours": -1}, headers=admin
        ),
        422,
    )
    saved = await api.put("/api/order-policy", json=policy, headers=admin)
    assert saved.status_code == 200, saved.text
    again = await api.get("/api/order-policy", headers=admin)
    assert again.json() == {**policy, "is_default": False}

    # With lab duplicates unchecked, the same lab twice signs without a finding.
    patient_id = str(other.patient["id"])
    doctor = {**other.auth(Role.PHYSICIAN), "If-Match": 'W/"1"'}
    for _ in range(2):
        order = (await _draft(api, other, patient_id, _lab("2093-3"))).json()
        # No body: a sign without an override.
        signed = await api.post(_path(patient_id, f"/{order['id']}/sign"), headers=doctor)
        assert signed.status_code == 200, signed.text
        assert signed.json()["findings"] == []
    assert await _audit(world, other, "order_policy:put")


# --------------------------------------------------------------------------- CDS order-dispatch


async def test_cds_order_dispatch_warns_about_an_order_that_is_not_signed(
    api: httpx.AsyncClient, world: World, tenant: TenantWorld, settings: Settings
) -> None:
    """A first-party CDS client of the tenant calls order-dispatch (prefetch from HAPI): the
    signed order dispatches silently, the draft gets a warning card."""
    patient_id = await _patient(world, tenant, "dispatch")
    doctor = tenant.auth(Role.PHYSICIAN)
    draft = (await _draft(api, tenant, patient_id, _lab("2888-6"))).json()
    signed = (await _draft(api, tenant, patient_id, _lab("2947-0"))).json()
    sign = await api.post(
        _path(patient_id, f"/{signed['id']}/sign"), headers={**doctor, "If-Match": 'W/"1"'}
    )
    assert sign.status_code == 200, sign.text
    key = new_client_key("ES384")
    issuer = f"https://cds-client.test/{world.run}"
    await register_cds_client(
        world.sessionmaker, tenant_slug=tenant.slug, issuer=issuer, key=key, first_party=True
    )
    try:
        path = "/cds-services/order-dispatch"
        audience = f"{settings.gateway.public_base_url.rstrip('/')}{path}"
        body = {
            "hook": "order-dispatch",
            "hookInstance": str(uuid.uuid4()),
            "context": {
                "patientId": patient_id,
                "performer": "Organization/lab",
                "dispatchedOrders": [draft["resource"], signed["resource"]],
            },
        }
        response = await api.post(
            path, json=body, headers=signed_headers(key, issuer=issuer, audience=audience)
        )
        assert response.status_code == 200, response.text
        cards = response.json()["cards"]
        topics = [c["source"]["topic"]["code"] for c in cards]
        assert topics == ["order-dispatch:order-not-active"], cards
        assert draft["resource"] in cards[0]["summary"]
    finally:
        await remove_cds_clients(world.sessionmaker, [issuer])
