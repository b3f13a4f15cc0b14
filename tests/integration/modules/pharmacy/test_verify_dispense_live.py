"""From a signed order to a dispensed one, against the real HAPI and PostgreSQL (ADR 0034).

A physician signs an oxycodone order (schedule II) through the orders API; its change (as the
worker's change feed delivers it) puts it in the verification queue; a lorazepam order recorded
after signing makes an opioid + benzodiazepine interaction that medication safety finds only at
verification; one pharmacist claims
(the other is refused), approves once the finding is acknowledged (a Task in HAPI, focus the
order); the order is dispensed FEFO from the lot expiring first — two MedicationDispenses, one
per lot, with their batches — and the controlled-substance ledger and the order's limits hold.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from support.database import Sessions, open_sessions
from support.in_process import serve
from support.tenant_world import TenantWorld, World, open_world
from support.throwaway_schema import throwaway_schema

from ehr.core.config import Settings
from ehr.core.db.models import PharmacyVerification
from ehr.entrypoints.api import create_app
from ehr.modules import pharmacy
from ehr.platform import events
from ehr.platform.auth.permissions import Role
from ehr.platform.auth.service import create_user
from ehr.platform.auth.tokens import issue_access_token_for

pytestmark = pytest.mark.integration

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
IBUPROFEN = {"ndc11": "00615831039", "rxcui": "197806", "name": "ibuprofen 600 MG Oral Tablet"}
OXYCODONE = {"ndc11": "00378611201", "rxcui": "1049621", "name": "oxycodone HCl 5 MG Oral Tablet"}
LORAZEPAM = "6470"  # the ingredient: any lorazepam product interacts
TODAY = datetime.now(UTC).date()


@pytest.fixture(scope="module")
async def schema_settings(settings: Settings) -> AsyncIterator[Settings]:
    async with throwaway_schema(settings, "rxq") as local:
        yield local


@pytest.fixture(scope="module")
async def sessions(schema_settings: Settings) -> AsyncIterator[Sessions]:
    async with open_sessions(schema_settings) as made:
        yield made


@pytest.fixture(scope="module")
async def world(schema_settings: Settings, run_id: str) -> AsyncIterator[World]:
    async with open_world(schema_settings, run_id, ["rxq"]) as made:
        yield made


@pytest.fixture(scope="module")
async def api(schema_settings: Settings, world: World) -> AsyncIterator[httpx.AsyncClient]:
    del world
    async with serve(create_app(schema_settings)) as made:
        yield made


@pytest.fixture(scope="module")
def tenant(world: World) -> TenantWorld:
    return world.tenants["rxq"]


async def created(api: httpx.AsyncClient, path: str, body: dict[str, Any], headers: Any) -> Any:
    answer = await api.post(path, json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def fed(world: World, sessions: Sessions, tenant: TenantWorld, reference: str) -> None:
    """The worker's change feed delivering the resource's current version to the handler."""
    kind, _, resource_id = reference.partition("/")
    current = await world.fhir.for_tenant(tenant.slug).read(kind, resource_id)
    event = events.new_event(
        "fhir.changed",
        tenant=tenant.slug,
        resource=reference,
        resource_version=str(current["meta"]["versionId"]),
        data={"operation": "update"},
    )
    async with sessions() as session, session.begin():
        await pharmacy.on_order_change(session, event, world.settings)


def oxycodone_order() -> dict[str, Any]:
    return {
        "kind": "medication",
        "medication": {"system": RXNORM, "code": OXYCODONE["rxcui"], "display": "oxycodone"},
        "dosage": {
            "dose": {"value": 5, "unit": "mg"},
            "route": {"system": SNOMED, "code": "26643006", "display": "Oral"},
            "frequency": 3,
            "period": 1,
            "period_unit": "d",
            "text": "Take 1 tablet by mouth three times a day for pain",
        },
        "dispense": {"quantity": {"value": 30, "unit": "{tbl}"}, "supply_days": 10},
        "repeats": 0,
        "priority": "urgent",
    }


async def signed_order(api: httpx.AsyncClient, tenant: TenantWorld, patient_id: str) -> str:
    doctor = tenant.auth(Role.PHYSICIAN)
    path = f"/api/patients/{patient_id}/orders"
    draft = await created(api, path, oxycodone_order(), doctor)
    order_path = f"{path}/{draft['id']}"
    etag = (await api.get(order_path, headers=doctor)).headers["etag"]
    signed = await api.post(f"{order_path}/sign", json={}, headers={**doctor, "If-Match": etag})
    assert signed.status_code == 200, signed.text
    return str(draft["id"]).removeprefix("MedicationRequest-")


async def test_signed_order_to_dispensed_fefo_with_an_interaction_found_at_verification(
    api: httpx.AsyncClient, world: World, sessions: Sessions, tenant: TenantWorld
) -> None:
    fhir = world.fhir.for_tenant(tenant.slug)
    patient = await fhir.create(
        {
            "resourceType": "Patient",
            "name": [{"family": f"Zzpharmacy{uuid.uuid4().hex[:6]}"}],
            "gender": "female",
            "birthDate": "1950-01-01",
        }
    )
    order_id = await signed_order(api, tenant, str(patient["id"]))
    # Recorded after the oxycodone order was signed: lorazepam, by another prescriber.
    lorazepam = await fhir.create(
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "subject": {"reference": f"Patient/{patient['id']}"},
            "authoredOn": (datetime.now(UTC) + timedelta(seconds=1)).isoformat(),
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": LORAZEPAM}]},
        }
    )
    await fed(world, sessions, tenant, f"MedicationRequest/{order_id}")
    await fed(world, sessions, tenant, f"MedicationRequest/{order_id}")  # redelivered: once
    await fed(world, sessions, tenant, f"MedicationRequest/{lorazepam['id']}")

    pharmacist = tenant.auth(Role.PHARMACIST)
    queue = await api.get("/api/pharmacy/queue", headers=pharmacist)
    assert queue.status_code == 200, queue.text
    mine = [e for e in queue.json()["items"] if e["order_id"] == order_id]
    assert [(e["state"], e["priority"]) for e in mine] == [("pending", "urgent")]
    # Urgent before routine: the oxycodone order comes before the (routine) lorazepam one.
    ids = [e["order_id"] for e in queue.json()["items"]]
    assert ids.index(order_id) < ids.index(str(lorazepam["id"]))
    assert (
        await api.get("/api/pharmacy/queue", headers=tenant.auth(Role.NURSE))
    ).status_code == 403

    # Stock: the lot expiring first holds 10, the next 50.
    pharmacist_actor = tenant.auth(Role.PHARMACIST)
    location = await created(
        api, "/api/pharmacy/locations", {"code": "OUTPT", "name": "Outpatient"}, pharmacist_actor
    )
    product = await created(
        api, "/api/pharmacy/products", {**OXYCODONE, "unit": "{tbl}"}, pharmacist_actor
    )
    assert product["schedule"] == "CII"
    for lot, days, quantity in (("OX-LATE", 300, 50), ("OX-SOON", 30, 10)):
        await created(
            api,
            "/api/pharmacy/stock/receipts",
            {
                "location_id": location["id"],
                "product_id": product["id"],
                "lot_number": lot,
                "expires_on": (TODAY + timedelta(days=days)).isoformat(),
                "quantity": quantity,
            },
            tenant.auth(Role.PHARMACY_TECHNICIAN),
        )
    dispense_path = f"/api/pharmacy/orders/{order_id}/dispenses"
    early = await api.post(
        dispense_path, json={"location_id": location["id"], "quantity": 30}, headers=pharmacist
    )
    assert (early.status_code, early.json()["code"]) == (409, "order_not_verified")

    # Claim: one pharmacist at a time.
    claim = f"/api/pharmacy/queue/{order_id}/claim"
    taken = await api.post(claim, headers=pharmacist)
    assert taken.status_code == 200, taken.text
    assert taken.json()["claimed_by"] == f"user:{tenant.users[Role.PHARMACIST]}"
    async with world.sessionmaker() as session, session.begin():
        other = await create_user(
            session,
            tenant_id=tenant.tenant_id,
            username=f"pharmacist.{uuid.uuid4().hex[:6]}",
            password="Other-Pharmacist-Long-Pass-77",
            roles=["pharmacist"],
            granted_by="test",
            settings=world.settings,
        )
        other_token = await issue_access_token_for(session, world.settings, other)
    colleague = {"Authorization": f"Bearer {other_token}"}
    refused = await api.post(claim, headers=colleague)
    assert (refused.status_code, refused.json()["code"]) == (409, "verification_claimed")
    not_mine = await api.post(
        f"/api/pharmacy/queue/{order_id}/decision", json={"decision": "approve"}, headers=colleague
    )
    assert (not_mine.status_code, not_mine.json()["code"]) == (409, "verification_claim_required")

    # Review: the interaction with lorazepam is found now, and marked as new since signing.
    review = await api.get(f"/api/pharmacy/queue/{order_id}", headers=pharmacist)
    assert review.status_code == 200, review.text
    findings = review.json()["findings"]
    interaction = [f for f in findings if f["category"] == "drug-drug"]
    assert interaction, findings
    assert all(f["new_since_signing"] for f in interaction)
    assert any(f"MedicationRequest/{lorazepam['id']}" in f["implicated"] for f in interaction)
    assert any(f["rule"] == "DDI-OPIOIDS-BENZODIAZEPINES" for f in interaction)

    decision = f"/api/pharmacy/queue/{order_id}/decision"
    if any(f["display"] == "interruptive" for f in interaction):
        blocked = await api.post(decision, json={"decision": "approve"}, headers=pharmacist)
        assert (blocked.status_code, blocked.json()["code"]) == (422, "findings_not_acknowledged")
    no_reason = await api.post(decision, json={"decision": "reject"}, headers=pharmacist)
    assert (no_reason.status_code, no_reason.json()["code"]) == (422, "reason_required")
    approved = await api.post(
        decision,
        json={
            "decision": "approve",
            "acknowledge_findings": True,
            "reason": "Short course; INR check arranged with the prescriber",
        },
        headers=pharmacist,
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["entry"]["state"] == "approved"
    task = await fhir.read("Task", approved.json()["task"].split("/")[1])
    assert task["status"] == "completed"
    assert task["focus"]["reference"] == f"MedicationRequest/{order_id}"
    assert task["code"]["coding"][0]["code"] == "pharmacy-verification"
    assert (await api.post(claim, headers=colleague)).json()["code"] == "verification_closed"

    # Dispense: not the ordered drug → 422; then FEFO across the two lots.
    lisinopril = await created(
        api,
        "/api/pharmacy/products",
        {"ndc11": "00093111310", "rxcui": "314076", "name": "lisinopril 10 mg", "unit": "{tbl}"},
        pharmacist,
    )
    wrong = await api.post(
        dispense_path,
        json={"location_id": location["id"], "quantity": 30, "product_id": lisinopril["id"]},
        headers=pharmacist,
    )
    assert (wrong.status_code, wrong.json()["code"]) == (422, "product_not_ordered")
    dispensed = await api.post(
        dispense_path,
        json={"location_id": location["id"], "quantity": 30, "days_supply": 10},
        headers={**pharmacist, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert dispensed.status_code == 201, dispensed.text
    body = dispensed.json()
    assert [(d["lot_number"], d["quantity"]) for d in body["dispensed"]] == [
        ("OX-SOON", "10.000"),
        ("OX-LATE", "20.000"),
    ]
    assert (body["fill"], body["dispensed_total"], body["allowed_total"]) == (
        "FF",
        "30.000",
        "30.000",
    )
    assert body["label"]["directions"] == "Take 1 tablet by mouth three times a day for pain"
    assert body["label"]["refills_left"] == 0
    assert body["label"]["patient"] == patient["name"][0]["family"]
    for line in body["dispensed"]:
        resource = await fhir.read("MedicationDispense", line["dispense"].split("/")[1])
        assert resource["status"] == "completed"
        assert (
            resource["authorizingPrescription"][0]["reference"] == f"MedicationRequest/{order_id}"
        )
        batch = resource["contained"][0]["batch"]
        assert batch["lotNumber"] == line["lot_number"]
        assert resource["daysSupply"]["value"] == 10
    stock = await api.get(
        "/api/pharmacy/stock",
        params={"location_id": location["id"], "product_id": product["id"]},
        headers=pharmacist,
    )
    assert [(b["lot"]["lot_number"], b["quantity"]) for b in stock.json()["items"]] == [
        ("OX-LATE", "30.000")
    ]

    # Never more than the order allows; prescribers see where it stands.
    more = await api.post(
        dispense_path, json={"location_id": location["id"], "quantity": 1}, headers=pharmacist
    )
    assert (more.status_code, more.json()["code"]) == (409, "exceeds_order")
    status = await api.get(f"/api/pharmacy/orders/{order_id}", headers=tenant.auth(Role.PHYSICIAN))
    assert status.status_code == 200, status.text
    assert (status.json()["state"], status.json()["dispensed_total"]) == ("approved", "30.000")
    verified = await api.get("/api/pharmacy/ledger/verification", headers=pharmacist)
    assert verified.json()["intact"] is True
    # The controlled-substance record: the receipts and the two dispenses, tied to the order.
    controlled = await api.get(
        "/api/pharmacy/ledger",
        params={"controlled": True, "product_id": product["id"]},
        headers=pharmacist,
    )
    rows = [(r["kind"], r["quantity"], r["reference"]) for r in controlled.json()["items"]]
    assert rows == [
        ("receive", "50.000", None),
        ("receive", "10.000", None),
        ("dispense", "-10.000", f"MedicationRequest/{order_id}"),
        ("dispense", "-20.000", f"MedicationRequest/{order_id}"),
    ]
    assert body["label"]["schedule"] == "CII"
    assert body["label"]["warning"] is not None


async def test_a_stopped_order_leaves_the_queue_and_a_changed_one_comes_back(
    api: httpx.AsyncClient, world: World, sessions: Sessions, tenant: TenantWorld
) -> None:
    fhir = world.fhir.for_tenant(tenant.slug)
    patient = await fhir.create({"resourceType": "Patient", "name": [{"family": "Zzqueue"}]})
    order = await fhir.create(
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "priority": "stat",
            "subject": {"reference": f"Patient/{patient['id']}"},
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "197806"}]},
        }
    )
    reference = f"MedicationRequest/{order['id']}"
    await fed(world, sessions, tenant, reference)
    pharmacist = tenant.auth(Role.PHARMACIST)
    first = (await api.get("/api/pharmacy/queue", headers=pharmacist)).json()["items"][0]
    assert (first["order_id"], first["priority"]) == (order["id"], "stat")  # stat comes first

    await fhir.update({**order, "status": "stopped"})
    await fed(world, sessions, tenant, reference)
    pending = (await api.get("/api/pharmacy/queue", headers=pharmacist)).json()["items"]
    assert order["id"] not in [e["order_id"] for e in pending]
    withdrawn = await api.get(
        "/api/pharmacy/queue", params={"state": "withdrawn"}, headers=pharmacist
    )
    assert order["id"] in [e["order_id"] for e in withdrawn.json()["items"]]


async def test_fifty_concurrent_dispenses_through_the_api_ten_units_left(
    api: httpx.AsyncClient, world: World, sessions: Sessions, tenant: TenantWorld
) -> None:
    fhir = world.fhir.for_tenant(tenant.slug)
    patient = await fhir.create({"resourceType": "Patient", "name": [{"family": "Zzrace"}]})
    answer = await fhir.transaction(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": {
                        "resourceType": "MedicationRequest",
                        "status": "active",
                        "intent": "order",
                        "subject": {"reference": f"Patient/{patient['id']}"},
                        "medicationCodeableConcept": {
                            "coding": [{"system": RXNORM, "code": IBUPROFEN["rxcui"]}]
                        },
                        "dispenseRequest": {"quantity": {"value": 1, "unit": "{tbl}"}},
                    },
                    "request": {"method": "POST", "url": "MedicationRequest"},
                }
                for _ in range(50)
            ],
        }
    )
    order_ids = [e["response"]["location"].split("/")[1] for e in answer["entry"]]
    for order_id in order_ids:
        await fed(world, sessions, tenant, f"MedicationRequest/{order_id}")
    async with sessions() as session, session.begin():
        await session.execute(
            update(PharmacyVerification)
            .where(PharmacyVerification.medication_request_id.in_(order_ids))
            .values(state="approved")
        )
    pharmacist = tenant.auth(Role.PHARMACIST)
    location = await created(
        api, "/api/pharmacy/locations", {"code": "RACE", "name": "Race"}, pharmacist
    )
    await api.post(
        "/api/pharmacy/products", json={**IBUPROFEN, "unit": "{tbl}"}, headers=pharmacist
    )  # 201, or 409 when an earlier test registered it
    products = (await api.get("/api/pharmacy/products", headers=pharmacist)).json()["items"]
    product = next(p for p in products if p["ndc11"] == IBUPROFEN["ndc11"])
    await created(
        api,
        "/api/pharmacy/stock/receipts",
        {
            "location_id": location["id"],
            "product_id": product["id"],
            "lot_number": "RACE-1",
            "expires_on": (TODAY + timedelta(days=100)).isoformat(),
            "quantity": 10,
        },
        pharmacist,
    )
    answers = await asyncio.gather(
        *(
            api.post(
                f"/api/pharmacy/orders/{order_id}/dispenses",
                json={"location_id": location["id"], "quantity": 1},
                headers=pharmacist,
            )
            for order_id in order_ids
        )
    )
    outcomes = Counter(
        a.status_code if a.status_code == 201 else a.json().get("code") for a in answers
    )
    assert outcomes == {201: 10, "insufficient_stock": 40}
    stock = await api.get(
        "/api/pharmacy/stock", params={"location_id": location["id"]}, headers=pharmacist
    )
    assert stock.json()["items"] == []  # nothing left, nothing below zero
    verified = await api.get("/api/pharmacy/ledger/verification", headers=pharmacist)
    assert verified.json()["intact"] is True


async def test_a_question_to_the_prescriber_is_a_task_they_own_and_see(
    api: httpx.AsyncClient, world: World, sessions: Sessions, tenant: TenantWorld
) -> None:
    fhir = world.fhir.for_tenant(tenant.slug)
    patient = await fhir.create({"resourceType": "Patient", "name": [{"family": "Zzclarify"}]})
    order_id = await signed_order(api, tenant, str(patient["id"]))
    await fed(world, sessions, tenant, f"MedicationRequest/{order_id}")
    pharmacist = tenant.auth(Role.PHARMACIST)
    assert (await api.post(f"/api/pharmacy/queue/{order_id}/claim", headers=pharmacist)).is_success
    asked = await api.post(
        f"/api/pharmacy/queue/{order_id}/decision",
        json={"decision": "clarify", "reason": "Confirm the duration: 10 days of oxycodone?"},
        headers=pharmacist,
    )
    assert asked.status_code == 200, asked.text
    task = await fhir.read("Task", asked.json()["task"].split("/")[1])
    assert task["code"]["coding"][0]["code"] == "pharmacy-clarification"
    assert task["status"] == "requested"
    assert task["owner"]["identifier"]["value"] == str(tenant.users[Role.PHYSICIAN])
    assert task["note"][0]["text"].startswith("Confirm the duration")

    doctor = tenant.auth(Role.PHYSICIAN)
    mine = await api.get("/api/pharmacy/clarifications", headers=doctor)
    assert mine.status_code == 200, mine.text
    assert order_id in [e["order_id"] for e in mine.json()["items"]]
    status = await api.get(f"/api/pharmacy/orders/{order_id}", headers=doctor)
    assert status.json()["state"] == "clarification"
    # Not dispensable while the question is open.
    dispense = await api.post(
        f"/api/pharmacy/orders/{order_id}/dispenses",
        json={"location_id": str(uuid.uuid4()), "quantity": 1},
        headers=pharmacist,
    )
    assert (dispense.status_code, dispense.json()["code"]) == (409, "order_not_verified")
