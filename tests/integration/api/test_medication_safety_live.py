"""/api/medication-safety against the real stack: HAPI, PostgreSQL (policy, audit), real tokens.

Two throwaway tenants (A, B) with real users and access tokens. Tenant A's patient has:

- MedicationRequest warfarin (active), naproxen (stopped: must be ignored), simvastatin (active,
  by ``medicationReference`` to a Medication resource: HAPI's ``_include``);
- MedicationStatement sildenafil (active, contained Medication), naproxen (active, but its
  effective period ended: must be ignored);
- AllergyIntolerance penicillin (active, SNOMED CT substance), ibuprofen (refuted: must be
  ignored).

Every FHIR resource carries ``meta.tag`` urn:ehr:test|<run id>; the resources, the partitions and
the rows are deleted at the end (audit records stay: the audit log is append-only).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from support.tenants import remove_tenants

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.core.db.models import AuditRecord
from ehr.core.error_handlers import PROBLEM_JSON
from ehr.fhir import FhirClient, TenantFhirClient
from ehr.modules.medication_safety import RXNORM_SYSTEM
from ehr.platform.auth.authorization import CONFIDENTIALITY_SYSTEM
from ehr.platform.auth.service import create_user
from ehr.platform.auth.tokens import issue_access_token_for
from ehr.platform.tenancy import create_tenant

pytestmark = pytest.mark.integration

PATH = "/api/medication-safety"
SNOMED = "http://snomed.info/sct"
PENICILLIN_SUBSTANCE = "764146007"
# RxNorm codes the shipped table resolves (checked with load_resolver()).
WARFARIN_5MG_TABLET = "855332"  # SCD
IBUPROFEN_600MG_TABLET = "197806"  # SCD
AMOXICILLIN_250MG_CAPSULE = "308182"  # SCD
NAPROXEN = "7258"  # IN
SIMVASTATIN = "36567"  # IN
SILDENAFIL = "136411"  # IN
CLARITHROMYCIN = "21212"  # IN
NITROGLYCERIN = "4917"  # IN
IBUPROFEN = "5640"  # IN
CLEANUP_ORDER = (
    "MedicationRequest",
    "MedicationStatement",
    "AllergyIntolerance",
    "Medication",
    "Patient",
)
BREAK_GLASS = {"X-Break-Glass-Reason": "Unconscious patient in the emergency department"}


# --------------------------------------------------------------------------- builders


def rxnorm(code: str) -> dict[str, Any]:
    return {"coding": [{"system": RXNORM_SYSTEM, "code": code}]}


def proposed(code: str, item_id: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"codings": [{"system": RXNORM_SYSTEM, "code": code}]}
    if item_id is not None:
        item["id"] = item_id
    return item


def status(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": f"http://terminology.hl7.org/CodeSystem/{system}", "code": code}]}


@dataclass
class Builder:
    tag: dict[str, str]

    def meta(self, *, restricted: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {"tag": [self.tag]}
        if restricted:
            meta["security"] = [{"system": CONFIDENTIALITY_SYSTEM, "code": "R"}]
        return meta

    def patient(self, *, restricted: bool = False, **overrides: Any) -> dict[str, Any]:
        resource = {
            "resourceType": "Patient",
            "meta": self.meta(restricted=restricted),
            "name": [{"family": f"Zzmedsafe{self.tag['code'].replace('-', '')}"}],
            "gender": "female",
            "birthDate": "1950-01-01",
        }
        return {**resource, **overrides}

    def request(self, patient_id: str, **overrides: Any) -> dict[str, Any]:
        resource = {
            "resourceType": "MedicationRequest",
            "meta": self.meta(),
            "status": "active",
            "intent": "order",
            "subject": {"reference": f"Patient/{patient_id}"},
            "medicationCodeableConcept": rxnorm(WARFARIN_5MG_TABLET),
        }
        return {**resource, **overrides}

    def statement(self, patient_id: str, **overrides: Any) -> dict[str, Any]:
        resource = {
            "resourceType": "MedicationStatement",
            "meta": self.meta(),
            "status": "active",
            "subject": {"reference": f"Patient/{patient_id}"},
            "medicationCodeableConcept": rxnorm(NAPROXEN),
        }
        return {**resource, **overrides}

    def medication(self, code: str, **overrides: Any) -> dict[str, Any]:
        return {
            "resourceType": "Medication",
            "meta": self.meta(),
            "code": rxnorm(code),
            **overrides,
        }

    def allergy(self, patient_id: str, **overrides: Any) -> dict[str, Any]:
        resource = {
            "resourceType": "AllergyIntolerance",
            "meta": self.meta(),
            "clinicalStatus": status("allergyintolerance-clinical", "active"),
            "verificationStatus": status("allergyintolerance-verification", "confirmed"),
            "category": ["medication"],
            "patient": {"reference": f"Patient/{patient_id}"},
            "code": {
                "coding": [{"system": SNOMED, "code": PENICILLIN_SUBSTANCE}],
                "text": "Penicillin",
            },
        }
        return {**resource, **overrides}


# --------------------------------------------------------------------------- the world


@dataclass
class Site:
    slug: str
    tenant_id: uuid.UUID
    tokens: dict[str, str] = field(default_factory=dict)
    patient: dict[str, Any] = field(default_factory=dict)
    restricted: dict[str, Any] = field(default_factory=dict)
    made: dict[str, dict[str, Any]] = field(default_factory=dict)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def ref(self, name: str) -> str:
        resource = self.made[name]
        return f"{resource['resourceType']}/{resource['id']}"


@dataclass
class World:
    a: Site
    b: Site
    sessionmaker: async_sessionmaker[AsyncSession]


async def _site(
    label: str,
    run_id: str,
    sessions: async_sessionmaker[AsyncSession],
    fhir: FhirClient,
    settings: Settings,
    roles: tuple[str, ...],
) -> Site:
    slug = f"z-ms-{run_id[4:]}-{label}"
    async with sessions() as session, session.begin():
        tenant, _ = await create_tenant(session, fhir, slug=slug, name=f"Medsafe {label}")
        site = Site(slug=slug, tenant_id=tenant.id)
        for role in roles:
            user = await create_user(
                session,
                tenant_id=tenant.id,
                username=f"medsafe.{role}",
                password="-".join(secrets.token_urlsafe(6) for _ in range(4)),
                roles=[role],
                granted_by="test",
                settings=settings,
            )
            site.tokens[role] = await issue_access_token_for(session, settings, user)
    return site


async def _populate(site: Site, fhir: TenantFhirClient, build: Builder) -> None:
    site.patient = await fhir.create(build.patient())
    site.restricted = await fhir.create(build.patient(restricted=True))
    pid = site.patient["id"]
    simvastatin = await fhir.create(build.medication(SIMVASTATIN))
    made = {
        "warfarin": build.request(pid),
        "naproxen-stopped": build.request(
            pid, status="stopped", medicationCodeableConcept=rxnorm(NAPROXEN)
        ),
        "simvastatin": build.request(
            pid,
            medicationCodeableConcept=None,
            medicationReference={"reference": f"Medication/{simvastatin['id']}"},
        ),
        "sildenafil": build.statement(
            pid,
            contained=[{"resourceType": "Medication", "id": "m1", "code": rxnorm(SILDENAFIL)}],
            medicationCodeableConcept=None,
            medicationReference={"reference": "#m1"},
        ),
        "naproxen-ended": build.statement(
            pid, effectivePeriod={"start": "2020-01-01", "end": "2020-02-01"}
        ),
        "penicillin": build.allergy(pid),
        "ibuprofen-refuted": build.allergy(
            pid,
            verificationStatus=status("allergyintolerance-verification", "refuted"),
            code=rxnorm(IBUPROFEN),
        ),
    }
    site.made["simvastatin-medication"] = simvastatin
    made["weight"] = {
        "resourceType": "Observation",
        "meta": build.meta(),
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2026-11-30T08:00:00Z",
        "valueQuantity": {
            "value": 99.2,
            "unit": "lb",
            "system": "http://unitsofmeasure.org",
            "code": "[lb_av]",
        },
    }
    for name, resource in made.items():
        clean = {key: value for key, value in resource.items() if value is not None}
        site.made[name] = await fhir.create(clean)


@pytest.fixture(scope="module")
async def world(settings: Settings, run_id: str, test_tag: dict[str, str]) -> AsyncIterator[World]:
    engine = create_engine(settings.db)
    sessions = create_sessionmaker(engine)
    fhir = FhirClient(settings.fhir)
    slugs = [f"z-ms-{run_id[4:]}-{label}" for label in ("a", "b")]
    try:
        a = await _site("a", run_id, sessions, fhir, settings, ("physician", "admin", "nurse"))
        b = await _site("b", run_id, sessions, fhir, settings, ("physician",))
        await _populate(a, fhir.for_tenant(a.slug), Builder(test_tag))
        yield World(a=a, b=b, sessionmaker=sessions)
    finally:
        try:
            await remove_tenants(slugs, fhir, sessions, tag=test_tag)
        finally:
            await fhir.aclose()
            await engine.dispose()


async def _records(world: World, response: httpx.Response) -> list[AuditRecord]:
    async with world.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditRecord)
            .where(
                AuditRecord.tenant == world.a.slug,
                AuditRecord.request_id == response.headers["x-request-id"],
            )
            .order_by(AuditRecord.seq)
        )
        return list(rows)


async def _patient_check(
    api: httpx.AsyncClient, world: World, body: dict[str, Any], *, role: str = "physician"
) -> httpx.Response:
    return await api.post(
        f"{PATH}/patients/{world.a.patient['id']}/check", json=body, headers=world.a.auth(role)
    )


def _rules(response: httpx.Response) -> list[str]:
    return sorted(issue["rule_id"] for issue in response.json()["issues"])


# --------------------------------------------------------------------------- patient checks


async def test_ibuprofen_interacts_with_warfarin_only(api: httpx.AsyncClient, world: World) -> None:
    response = await _patient_check(api, world, {"proposed": [proposed(IBUPROFEN_600MG_TABLET)]})
    assert response.status_code == 200, response.text
    body = response.json()
    # Not the stopped naproxen order nor the ended naproxen statement (duplicate NSAIDs), not
    # the refuted ibuprofen allergy.
    assert _rules(response) == ["DDI-WARFARIN-NSAIDS"]
    issue = body["issues"][0]
    assert issue["category"] == "drug-drug"
    assert issue["severity"] == "major"
    assert issue["display"] == "interruptive"
    assert body["interruptive"] is True
    assert [i["role"] for i in issue["implicated"]] == ["proposed", "active"]
    assert issue["implicated"][1]["reference"] == world.a.ref("warfarin")
    assert issue["implicated"][1]["label"] == "warfarin sodium 5 MG Oral Tablet"  # RxNorm name
    assert issue["citations"]
    assert issue["source_list"]
    assert issue["mechanism"]
    assert issue["management"]
    assert body["kb_version"]
    profile = body["profile"]
    assert profile["patient_id"] == world.a.patient["id"]
    assert profile["medications_considered"] == 3
    assert profile["allergies_considered"] == 1
    assert profile["complete"] is True
    assert profile["sex"] == "female"
    assert profile["age_years"] >= 75
    assert {(s["reference"], s["reason"]) for s in profile["skipped"]} == {
        (world.a.ref("naproxen-ended"), "effective-period-ended"),
        (world.a.ref("ibuprofen-refuted"), "verification-refuted"),
    }
    assert world.a.ref("naproxen-stopped") not in response.text
    assert body["detected_issues"] is None


ENOXAPARIN_40MG_SYRINGE = "854235"  # 0.4 ML enoxaparin sodium 100 MG/ML Prefilled Syringe


async def test_a_per_kg_dose_is_checked_with_the_recorded_weight(
    api: httpx.AsyncClient, world: World
) -> None:
    # 99.2 lb = 45 kg: enoxaparin 100 mg every 12 h is 2.2 mg/kg a dose (label: 1.5 at most).
    dosed = {
        **proposed(ENOXAPARIN_40MG_SYRINGE, "enox"),
        "dosage": {
            "dose": {"value": 100, "unit": "mg"},
            "frequency": 2,
            "period": 1,
            "period_unit": "d",
        },
    }
    response = await _patient_check(api, world, {"proposed": [dosed]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["profile"]["weight_kg"] == pytest.approx(45.0, abs=0.01)
    assert "DOSE-ENOXAPARIN" in _rules(response)
    enox = next(i for i in body["items"] if i["item_id"] == "enox")
    assert enox["dose"] == "flagged"


async def test_amoxicillin_meets_the_penicillin_allergy(
    api: httpx.AsyncClient, world: World
) -> None:
    response = await _patient_check(
        api, world, {"proposed": [proposed(AMOXICILLIN_250MG_CAPSULE, "amox")]}
    )
    assert response.status_code == 200, response.text
    assert _rules(response) == ["ALG-SAME-GROUP"]
    issue = response.json()["issues"][0]
    assert issue["category"] == "drug-allergy"
    assert issue["implicated"][0]["id"] == "amox"
    assert issue["implicated"][1]["reference"] == world.a.ref("penicillin")


async def test_referenced_and_contained_medications_are_checked(
    api: httpx.AsyncClient, world: World
) -> None:
    response = await _patient_check(
        api,
        world,
        {"proposed": [proposed(CLARITHROMYCIN), proposed(NITROGLYCERIN)]},
    )
    assert response.status_code == 200, response.text
    issues = {i["rule_id"]: i for i in response.json()["issues"]}
    # Clarithromycin meets simvastatin (a referenced Medication) and sildenafil (contained);
    # nitroglycerin meets sildenafil.
    assert set(issues) == {
        "ONC-HP-25",
        "DDI-NITRATES-PDE5-INHIBITORS",
        "DDI-PDE5-INHIBITORS-STRONG-CYP3A4",
    }
    assert issues["ONC-HP-25"]["implicated"][1]["reference"] == world.a.ref("simvastatin")
    assert issues["DDI-NITRATES-PDE5-INHIBITORS"]["implicated"][1]["reference"] == world.a.ref(
        "sildenafil"
    )


async def test_replaced_orders_are_left_out_and_detected_issues_rendered(
    api: httpx.AsyncClient, world: World
) -> None:
    response = await api.post(
        f"{PATH}/patients/{world.a.patient['id']}/check",
        params={"include": "detected-issue"},
        json={
            "proposed": [proposed(IBUPROFEN_600MG_TABLET), proposed(AMOXICILLIN_250MG_CAPSULE)],
            "replaces": [world.a.ref("warfarin")],
        },
        headers=world.a.auth("nurse"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert _rules(response) == ["ALG-SAME-GROUP"]
    assert (world.a.ref("warfarin"), "replaced-by-proposed") in {
        (s["reference"], s["reason"]) for s in body["profile"]["skipped"]
    }
    [detected] = body["detected_issues"]
    assert detected["resourceType"] == "DetectedIssue"
    assert detected["patient"]["reference"] == f"Patient/{world.a.patient['id']}"


async def test_one_audit_record_per_patient_check(api: httpx.AsyncClient, world: World) -> None:
    response = await _patient_check(api, world, {"proposed": [proposed(IBUPROFEN_600MG_TABLET)]})
    assert response.status_code == 200, response.text
    [record] = await _records(world, response)
    assert record.action == "medication_safety:patient-check"
    assert (record.resource_type, record.resource_id) == ("Patient", world.a.patient["id"])
    assert record.patient_id == world.a.patient["id"]
    assert (record.outcome, record.http_status) == ("success", 200)
    assert record.actor_roles == ["physician"]
    assert record.break_glass is False
    assert record.details is not None
    assert record.details["issues"] == 1
    assert "Zzmedsafe" not in str(record.details)


async def test_restricted_patient_needs_break_glass(api: httpx.AsyncClient, world: World) -> None:
    url = f"{PATH}/patients/{world.a.restricted['id']}/check"
    body = {"proposed": [proposed(IBUPROFEN_600MG_TABLET)]}
    plain = await api.post(url, json=body, headers=world.a.auth("physician"))
    assert plain.status_code == 403, plain.text
    assert plain.json()["code"] == "break_glass_required"
    glass = await api.post(url, json=body, headers={**world.a.auth("physician"), **BREAK_GLASS})
    assert glass.status_code == 200, glass.text
    [record] = await _records(world, glass)
    assert record.break_glass is True
    assert record.break_glass_reason == BREAK_GLASS["X-Break-Glass-Reason"]
    assert record.purpose_of_use == "ETREAT"


async def test_other_tenants_patient_is_not_found(api: httpx.AsyncClient, world: World) -> None:
    for headers in (world.b.auth("physician"), {**world.b.auth("physician"), **BREAK_GLASS}):
        response = await api.post(
            f"{PATH}/patients/{world.a.patient['id']}/check",
            json={"proposed": [proposed(IBUPROFEN_600MG_TABLET)]},
            headers=headers,
        )
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == PROBLEM_JSON
        assert "warfarin" not in response.text.lower()


async def test_unknown_patient_is_404(api: httpx.AsyncClient, world: World) -> None:
    response = await api.post(
        f"{PATH}/patients/{uuid.uuid4()}/check",
        json={"proposed": [proposed(IBUPROFEN_600MG_TABLET)]},
        headers=world.a.auth("physician"),
    )
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == PROBLEM_JSON


# --------------------------------------------------------------------------- explicit lists


async def test_explicit_lists_and_an_unknown_code(api: httpx.AsyncClient, world: World) -> None:
    response = await api.post(
        f"{PATH}/check",
        json={
            "proposed": [proposed(IBUPROFEN_600MG_TABLET), proposed("99999999", "mystery")],
            "active": [proposed(WARFARIN_5MG_TABLET, "warfarin")],
            "allergies": [{"codings": [{"system": SNOMED, "code": PENICILLIN_SUBSTANCE}]}],
            "patient": {"age_years": 70, "sex": "male"},
        },
        headers=world.a.auth("physician"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    # The unknown code was not screened: said as an issue of its own, not left silent.
    assert _rules(response) == ["DDI-WARFARIN-NSAIDS", "MS-UNABLE-TO-CHECK"]
    unable = next(i for i in body["issues"] if i["rule_id"] == "MS-UNABLE-TO-CHECK")
    assert unable["category"] == "unable-to-check"
    assert [i["id"] for i in unable["implicated"]] == ["mystery"]
    assert body["interruptive"] is True  # the warfarin/NSAID pair, not the unscreened item
    assert [(i["item_id"], i["role"], i["status"]) for i in body["items"]] == [
        ("proposed-1", "proposed", "checked"),
        ("mystery", "proposed", "unresolved"),
        ("warfarin", "active", "checked"),
        ("allergy-1", "allergy", "checked"),
    ]
    assert body["items"][0]["screened_against"] == body["kb_version"]
    assert [i["name"] for i in body["items"][0]["ingredients"]] == ["ibuprofen"]
    assert body["unresolved"] == [
        {
            "item_id": "mystery",
            "kind": "medication",
            "system": RXNORM_SYSTEM,
            "code": "99999999",
            "display": None,
            "reason": "unknown-code",
        }
    ]
    assert [n["item_id"] for n in body["not_checkable"]] == ["mystery"]
    [record] = await _records(world, response)
    assert record.action == "medication_safety:check"
    assert record.patient_id is None
    assert record.resource_type is None


METFORMIN_500MG_TABLET = "861007"  # SCD; the knowledge base names no rule for metformin
APIXABAN_5MG_TABLET = "1364445"  # SCD


async def test_a_drug_the_kb_does_not_name_is_checked_and_a_high_dose_flagged(
    api: httpx.AsyncClient, world: World
) -> None:
    response = await api.post(
        f"{PATH}/check",
        json={
            "proposed": [
                proposed(METFORMIN_500MG_TABLET, "metformin"),
                {
                    **proposed(APIXABAN_5MG_TABLET, "apixaban"),
                    "dosage": {
                        "dose": {"value": 2, "unit": "{tbl}"},
                        "frequency": 3,
                        "period": 1,
                        "period_unit": "d",
                    },
                },
            ],
            "patient": {"age_years": 70, "weight_kg": 80},
        },
        headers=world.a.auth("physician"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    items = {i["item_id"]: i for i in body["items"]}
    assert items["metformin"]["status"] == "checked"
    assert items["metformin"]["screened_against"] == body["kb_version"]
    assert items["metformin"]["without_rules"] == ["6809"]
    assert items["apixaban"]["dose"] == "flagged"
    assert _rules(response) == ["DOSE-APIXABAN"]
    (dose,) = body["issues"]
    assert dose["category"] == "dose-range"
    assert "30 mg a day is above the maximum daily dose of 20 mg" in dose["title"]
    bad = await api.post(
        f"{PATH}/check",
        json={
            "proposed": [{**proposed(APIXABAN_5MG_TABLET), "dosage": {"period": 1, "frequency": 2}}]
        },
        headers=world.a.auth("physician"),
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"proposed": []},
        {"proposed": [{"codings": []}]},
        {"proposed": [proposed(IBUPROFEN_600MG_TABLET)] * 101},
        {"proposed": [{"codings": [{"system": RXNORM_SYSTEM, "code": "1"}] * 21}]},
        {"proposed": [{"codings": [{"system": RXNORM_SYSTEM, "code": "x" * 101}]}]},
        {"proposed": [proposed("1", "same"), proposed("2", "same")]},
        {"proposed": [proposed("1")], "surprise": True},
        {"proposed": [proposed("1")], "patient": {"age_years": -1}},
    ],
)
async def test_malformed_payloads_are_422_problems(
    api: httpx.AsyncClient, world: World, body: dict[str, Any]
) -> None:
    response = await api.post(f"{PATH}/check", json=body, headers=world.a.auth("physician"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == "validation_failed"


async def test_malformed_patient_check_is_422(api: httpx.AsyncClient, world: World) -> None:
    response = await _patient_check(
        api, world, {"proposed": [proposed("1")], "replaces": ["Patient/1"]}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON


# --------------------------------------------------------------------------- knowledge base


async def test_knowledge_base_and_rules(api: httpx.AsyncClient, world: World) -> None:
    kb = await api.get(f"{PATH}/knowledge-base", headers=world.a.auth("physician"))
    assert kb.status_code == 200, kb.text
    body = kb.json()
    assert body["version"].startswith(body["release"] + "+")
    assert body["sources"]
    assert all(len(s["sha256"]) == 64 for s in body["sources"])
    assert body["counts"]["interactions"] == sum(
        body["counts"]["interactions_by_severity"].values()
    )
    assert "National Library of Medicine" in body["rxnorm"]["attribution"]
    assert body["rxnorm"]["concepts"] > 0

    rules = await api.get(
        f"{PATH}/knowledge-base/rules",
        params={"category": "drug-drug", "severity": "contraindicated"},
        headers=world.a.auth("physician"),
    )
    assert rules.status_code == 200, rules.text
    items = rules.json()["items"]
    assert items
    assert {(r["category"], r["severity"]) for r in items} == {("drug-drug", "contraindicated")}
    assert "ONC-HP-25" in {r["id"] for r in items}
    bad = await api.get(
        f"{PATH}/knowledge-base/rules", params={"severity": "loud"}, headers=world.a.auth("nurse")
    )
    assert bad.status_code == 422


# --------------------------------------------------------------------------- policy


async def test_policy_change_by_admin_changes_the_display(
    api: httpx.AsyncClient, world: World
) -> None:
    initial = await api.get(f"{PATH}/policy", headers=world.a.auth("admin"))
    assert initial.status_code == 200, initial.text
    # Reading the policy is the administrators' (clinicians see its effect on each issue).
    hidden = await api.get(f"{PATH}/policy", headers=world.a.auth("physician"))
    assert hidden.status_code == 403, hidden.text
    assert initial.json()["is_default"] is True
    assert initial.json()["interruptive_severities"] == ["contraindicated", "major"]

    denied = await api.put(
        f"{PATH}/policy",
        json={"interruptive_severities": ["contraindicated"], "rule_display": {}},
        headers=world.a.auth("physician"),
    )
    assert denied.status_code == 403, denied.text
    assert denied.json()["code"] == "permission_denied"

    unknown = await api.put(
        f"{PATH}/policy",
        json={"interruptive_severities": ["major"], "rule_display": {"NO-SUCH-RULE": "passive"}},
        headers=world.a.auth("admin"),
    )
    assert unknown.status_code == 422, unknown.text
    assert unknown.headers["content-type"] == PROBLEM_JSON
    assert unknown.json()["unknown_rule_ids"] == ["NO-SUCH-RULE"]

    saved = await api.put(
        f"{PATH}/policy",
        json={
            "interruptive_severities": ["contraindicated"],
            "rule_display": {"ALG-SAME-GROUP": "informational"},
        },
        headers=world.a.auth("admin"),
    )
    assert saved.status_code == 200, saved.text
    policy = saved.json()
    assert policy["is_default"] is False
    assert policy["interruptive_severities"] == ["contraindicated"]
    assert policy["rule_display"] == {"ALG-SAME-GROUP": "informational"}
    assert policy["updated_at"]
    [event] = await _records(world, saved)
    assert event.action == "medication_safety:policy-update"
    assert event.actor_roles == ["admin"]
    assert event.details is not None
    assert event.details["previous"]["default"] is True

    # The tenant's checks now use it: major is no longer interruptive, the group rule is info.
    check = await _patient_check(
        api,
        world,
        {"proposed": [proposed(IBUPROFEN_600MG_TABLET), proposed(AMOXICILLIN_250MG_CAPSULE)]},
    )
    assert check.status_code == 200, check.text
    displays = {i["rule_id"]: (i["display"], i["kb_display"]) for i in check.json()["issues"]}
    assert displays == {
        "DDI-WARFARIN-NSAIDS": ("passive", "interruptive"),
        "ALG-SAME-GROUP": ("informational", "interruptive"),
    }
    assert check.json()["interruptive"] is False
    seen = await api.get(f"{PATH}/policy", headers=world.a.auth("admin"))
    assert seen.json() == policy

    # Tenant B is untouched.
    other = await api.post(
        f"{PATH}/check",
        json={
            "proposed": [proposed(IBUPROFEN_600MG_TABLET)],
            "active": [proposed(WARFARIN_5MG_TABLET)],
        },
        headers=world.b.auth("physician"),
    )
    assert other.json()["issues"][0]["display"] == "interruptive"

    reset = await api.put(
        f"{PATH}/policy",
        json={"interruptive_severities": ["contraindicated", "major"], "rule_display": {}},
        headers=world.a.auth("admin"),
    )
    assert reset.status_code == 200, reset.text
