"""The medication-safety service: FHIR → engine inputs (statuses, intents, dates, contained and
referenced Medications, allergy statuses, free text, unknown systems, restricted resources), the
bounded record read (respx), the explicit-list check, the rules and knowledge-base summaries and
the policy.

FHIR payloads come from the ``make_*`` builders below (no pasted JSON).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
import respx
from support.tiny_kb import IN, PENICILLIN_SNOMED, DictResolver

from ehr.core.config import FhirSettings
from ehr.core.errors import RequestValidationFailed
from ehr.fhir import FhirClient, FhirUnavailable
from ehr.modules.cds_hooks.medication_cards import to_cds_card
from ehr.modules.medication_safety.catalogue import (
    RXNORM_ATTRIBUTION,
    knowledge_base_summary,
    list_rules,
)
from ehr.modules.medication_safety.issues import IssueCategory, Policy
from ehr.modules.medication_safety.knowledge import (
    NDC_SYSTEM,
    RXNORM_SYSTEM,
    Display,
    KnowledgeBase,
    LoadedKnowledge,
    RouteCategory,
    RxNormTable,
    Severity,
)
from ehr.modules.medication_safety.policy import TenantPolicy, known_rule_ids, save_policy
from ehr.modules.medication_safety.profile import (
    Skipped,
    allergy_from_fhir,
    build_profile,
    medication_from_request,
    medication_from_statement,
    patient_context,
    period_has_ended,
)
from ehr.modules.medication_safety.record import MAX_PAGES, PatientRecord, read_patient_record
from ehr.modules.medication_safety.schemas import CheckRequest, PatientCheckRequest, PolicyIn
from ehr.modules.medication_safety.service import MedicationSafetyService
from ehr.modules.patients.service import PatientService
from ehr.platform.auth.authorization import CONFIDENTIALITY_SYSTEM

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
SNOMED = "http://snomed.info/sct"
LOCAL_SYSTEM = "http://example.org/local-drug-codes"
BASE = "http://127.0.0.1:9/fhir"
TENANT = "unit-tenant"


# --------------------------------------------------------------------------- builders


def rxnorm(code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": RXNORM_SYSTEM, "code": code}
    if display is not None:
        coding["display"] = display
    return coding


def concept(*codings: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {"coding": list(codings)}
    if text is not None:
        value["text"] = text
    return value


def status(code: str) -> dict[str, Any]:
    return concept({"system": "http://terminology.hl7.org/CodeSystem/x", "code": code})


def restricted() -> dict[str, Any]:
    return {"security": [{"system": CONFIDENTIALITY_SYSTEM, "code": "R"}]}


def make_patient(**overrides: Any) -> dict[str, Any]:
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": "p-1",
        "gender": "female",
        "birthDate": "1950-06-16",
    }
    patient.update(overrides)
    return patient


def make_request(**overrides: Any) -> dict[str, Any]:
    """An active warfarin order (MedicationRequest)."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": "mr-1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p-1"},
        "medicationCodeableConcept": concept(rxnorm(IN["warfarin"], "warfarin"), text="Warfarin"),
    }
    resource.update(overrides)
    return resource


def make_statement(**overrides: Any) -> dict[str, Any]:
    """An active naproxen statement (MedicationStatement)."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "id": "ms-1",
        "status": "active",
        "subject": {"reference": "Patient/p-1"},
        "medicationCodeableConcept": concept(rxnorm(IN["naproxen"], "naproxen")),
    }
    resource.update(overrides)
    return resource


def make_medication(**overrides: Any) -> dict[str, Any]:
    medication: dict[str, Any] = {
        "resourceType": "Medication",
        "id": "med-1",
        "code": concept(rxnorm(IN["amiodarone"], "amiodarone"), text="Amiodarone"),
    }
    medication.update(overrides)
    return medication


def make_allergy(**overrides: Any) -> dict[str, Any]:
    """An active, confirmed penicillin allergy (AllergyIntolerance)."""
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": "al-1",
        "clinicalStatus": status("active"),
        "verificationStatus": status("confirmed"),
        "category": ["medication"],
        "criticality": "high",
        "patient": {"reference": "Patient/p-1"},
        "code": concept({"system": SNOMED, "code": PENICILLIN_SNOMED}, text="Penicillin"),
    }
    resource.update(overrides)
    return resource


def make_bundle(
    *resources: dict[str, Any],
    included: tuple[dict[str, Any], ...] = (),
    next_url: str | None = None,
) -> dict[str, Any]:
    links = [{"relation": "next", "url": next_url}] if next_url else []
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [
            *({"resource": r, "search": {"mode": "match"}} for r in resources),
            *({"resource": r, "search": {"mode": "include"}} for r in included),
        ],
    }


def request_of(
    resource: dict[str, Any], medications: dict[str, dict[str, Any]] | None = None
) -> Any:
    return medication_from_request(resource, medications or {}, may_see_restricted=False)


def statement_of(resource: dict[str, Any]) -> Any:
    return medication_from_statement(resource, {}, now=NOW, may_see_restricted=False)


def service_for(kb: KnowledgeBase, resolver: DictResolver, policy: Policy | None = None) -> Any:
    fhir = FhirClient(FhirSettings(base_url=BASE)).for_tenant(TENANT)
    return MedicationSafetyService(
        LoadedKnowledge(kb=kb, resolver=cast(RxNormTable, resolver)),
        fhir=fhir,
        patients=PatientService(fhir, page_token_key=b"k"),
        policy=TenantPolicy(policy or Policy()),
        card_renderer=to_cds_card,  # as create_app wires it
    )


# --------------------------------------------------------------------------- MedicationRequest


@pytest.mark.parametrize("value", ["active", "on-hold"])
def test_active_and_on_hold_orders_count(value: str) -> None:
    found = request_of(make_request(status=value))
    assert not isinstance(found, Skipped)
    assert found.id == found.reference == "MedicationRequest/mr-1"
    assert found.label == "Warfarin"
    assert [c.code for c in found.codings] == [IN["warfarin"]]


@pytest.mark.parametrize(
    "value", ["draft", "completed", "stopped", "cancelled", "entered-in-error", "unknown", None]
)
def test_other_order_statuses_are_skipped(value: str | None) -> None:
    assert request_of(make_request(status=value)) == Skipped(
        "MedicationRequest/mr-1", "status-not-active"
    )


@pytest.mark.parametrize(
    ("intent", "counts"),
    [
        ("order", True),
        ("original-order", True),
        ("reflex-order", True),
        ("filler-order", True),
        ("instance-order", True),
        ("plan", True),
        ("proposal", False),
        ("option", False),
    ],
)
def test_intent(intent: str, counts: bool) -> None:
    found = request_of(make_request(intent=intent))
    if counts:
        assert not isinstance(found, Skipped)
    else:
        assert found == Skipped("MedicationRequest/mr-1", "intent-not-an-order")


def test_do_not_perform_orders_are_skipped() -> None:
    assert request_of(make_request(doNotPerform=True)).reason == "do-not-perform"


def test_snomed_dosage_route_is_used() -> None:
    topical = {"route": concept({"system": SNOMED, "code": "6064005"})}
    assert request_of(make_request(dosageInstruction=[topical])).route is RouteCategory.TOPICAL
    unknown = {"route": concept({"system": SNOMED, "code": "999999"})}
    assert request_of(make_request(dosageInstruction=[unknown])).route is None


# --------------------------------------------------------------------------- medication codes


def test_contained_medication() -> None:
    contained = make_medication(id="m1")
    found = request_of(
        make_request(
            medicationCodeableConcept=None,
            medicationReference={"reference": "#m1"},
            contained=[contained],
        )
    )
    assert [c.code for c in found.codings] == [IN["amiodarone"]]
    assert found.label == "Amiodarone"


def test_contained_medication_that_is_missing_leaves_the_display() -> None:
    found = request_of(
        make_request(
            medicationCodeableConcept=None,
            medicationReference={"reference": "#gone", "display": "Mystery tablets"},
        )
    )
    assert found.codings == ()
    assert found.text == found.label == "Mystery tablets"


@pytest.mark.parametrize(
    "reference",
    [
        "Medication/med-1",
        "http://hapi.example/fhir/T/Medication/med-1",
        "Medication/med-1/_history/2",
    ],
)
def test_referenced_medication_from_the_included_resources(reference: str) -> None:
    included = {"Medication/med-1": make_medication()}
    resource = make_request(
        medicationCodeableConcept=None, medicationReference={"reference": reference}
    )
    found = request_of(resource, included)
    assert [c.code for c in found.codings] == [IN["amiodarone"]]


def test_labels_fall_back_to_the_rxnorm_name_then_the_reference() -> None:
    bare = make_request(medicationCodeableConcept=concept(rxnorm(IN["warfarin"])))
    named = medication_from_request(
        bare, {}, may_see_restricted=False, name_of=lambda codings: "warfarin (RxNorm)"
    )
    assert named.label == "warfarin (RxNorm)"
    assert request_of(bare).label == "MedicationRequest/mr-1"


def test_referenced_medication_not_included_is_not_checkable() -> None:
    resource = make_request(
        medicationCodeableConcept=None, medicationReference={"reference": "Medication/elsewhere"}
    )
    found = request_of(resource)
    assert found.codings == ()
    assert found.label == "MedicationRequest/mr-1"


def test_medication_without_code_uses_its_ingredients() -> None:
    compound = make_medication(
        code=None,
        ingredient=[
            {"itemCodeableConcept": concept(rxnorm(IN["acetaminophen"]))},
            {"itemCodeableConcept": concept(rxnorm(IN["hydrocodone"]))},
        ],
    )
    resource = make_request(
        medicationCodeableConcept=None, medicationReference={"reference": "Medication/med-1"}
    )
    found = request_of(resource, {"Medication/med-1": compound})
    assert {c.code for c in found.codings} == {IN["acetaminophen"], IN["hydrocodone"]}


def test_codings_without_a_code_are_ignored_and_a_missing_system_is_kept_empty() -> None:
    found = request_of(
        make_request(
            medicationCodeableConcept=concept(
                {"system": RXNORM_SYSTEM, "display": "no code"},
                {"code": "12345"},
                text="Something",
            )
        )
    )
    assert [(c.system, c.code) for c in found.codings] == [("", "12345")]


# --------------------------------------------------------------------------- MedicationStatement


@pytest.mark.parametrize("value", ["active", "intended", "on-hold"])
def test_active_statements_count(value: str) -> None:
    assert not isinstance(statement_of(make_statement(status=value)), Skipped)


@pytest.mark.parametrize(
    "value", ["completed", "stopped", "not-taken", "entered-in-error", "unknown"]
)
def test_other_statement_statuses_are_skipped(value: str) -> None:
    assert statement_of(make_statement(status=value)).reason == "status-not-active"


@pytest.mark.parametrize(
    ("end", "ended"),
    [
        ("2026-06-14", True),  # yesterday
        ("2026-06-15", False),  # today: still current
        ("2026-06", False),  # this month
        ("2026-05", True),
        ("2026", False),
        ("2025", True),
        ("2026-06-15T11:59:00Z", True),
        ("2026-06-15T12:01:00+00:00", False),
        ("2026-06-15T13:30:00+02:00", True),  # 11:30 UTC
        ("2027-01-01", False),
        ("not a date", False),
        ("2026-02-30", False),  # invalid: does not exclude
    ],
)
def test_statement_effective_period_end(end: str, ended: bool) -> None:
    found = statement_of(make_statement(effectivePeriod={"start": "2020-01-01", "end": end}))
    assert isinstance(found, Skipped) is ended
    assert period_has_ended(end, NOW) is ended


def test_statement_without_an_end_counts() -> None:
    assert not isinstance(statement_of(make_statement(effectivePeriod={"start": "2020"})), Skipped)
    assert period_has_ended(None, NOW) is False


# --------------------------------------------------------------------------- AllergyIntolerance


def allergy_of(resource: dict[str, Any]) -> Any:
    return allergy_from_fhir(resource, may_see_restricted=False)


def test_active_confirmed_allergy() -> None:
    found = allergy_of(make_allergy())
    assert found.id == found.reference == "AllergyIntolerance/al-1"
    assert found.label == "Penicillin"
    assert found.criticality == "high"
    assert [(c.system, c.code) for c in found.codings] == [(SNOMED, PENICILLIN_SNOMED)]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"clinicalStatus": status("inactive")}, "clinical-status-not-active"),
        ({"clinicalStatus": status("resolved")}, "clinical-status-not-active"),
        ({"verificationStatus": status("refuted")}, "verification-refuted"),
        (
            {"clinicalStatus": None, "verificationStatus": status("entered-in-error")},
            "verification-entered-in-error",
        ),
        ({"category": ["food"]}, "not-a-medication-allergy"),
        ({"category": ["environment", "biologic"]}, "not-a-medication-allergy"),
    ],
)
def test_allergies_left_out(changes: dict[str, Any], reason: str) -> None:
    assert allergy_of(make_allergy(**changes)) == Skipped("AllergyIntolerance/al-1", reason)


@pytest.mark.parametrize(
    "changes",
    [
        {"clinicalStatus": None},
        {"verificationStatus": None},
        {"verificationStatus": status("unconfirmed")},
        {"verificationStatus": status("presumed")},
        {"category": None},
        {"category": ["food", "medication"]},
        {"criticality": "unexpected"},
    ],
)
def test_allergies_that_count(changes: dict[str, Any]) -> None:
    assert not isinstance(allergy_of(make_allergy(**changes)), Skipped)


def test_free_text_allergy() -> None:
    found = allergy_of(make_allergy(code={"text": "Sulfa drugs"}))
    assert found.codings == ()
    assert found.text == found.label == "Sulfa drugs"


# --------------------------------------------------------------------------- Patient


@pytest.mark.parametrize(
    ("birth", "age"),
    [
        ("1950-06-15", 76),  # birthday today
        ("1950-06-16", 75),
        ("1950-06", 75),  # youngest possible: born 1950-06-30
        ("1950", 75),  # youngest possible: born 1950-12-31
        ("2027-01-01", None),
        ("garbage", None),
    ],
)
def test_patient_age(birth: str, age: int | None) -> None:
    assert patient_context(make_patient(birthDate=birth), NOW.date()).age_years == age


def test_patient_sex() -> None:
    assert patient_context(make_patient(), NOW.date()).sex == "female"
    assert patient_context(make_patient(gender="x"), NOW.date()).sex is None


# --------------------------------------------------------------------------- the profile


def test_profile_considers_active_items_and_lists_the_rest() -> None:
    record = PatientRecord(
        patient=make_patient(),
        requests=[
            make_request(),
            make_request(id="mr-2", intent="proposal"),
            make_request(id="mr-3", meta=restricted()),
            make_request(id="mr-4"),
        ],
        statements=[make_statement(), make_statement(id="ms-2", effectivePeriod={"end": "2001"})],
        allergies=[make_allergy(), make_allergy(id="al-2", verificationStatus=status("refuted"))],
    )
    profile = build_profile(
        record, replaces=["MedicationRequest/mr-4"], now=NOW, may_see_restricted=False
    )
    assert [m.id for m in profile.active] == ["MedicationRequest/mr-1", "MedicationStatement/ms-1"]
    assert [a.id for a in profile.allergies] == ["AllergyIntolerance/al-1"]
    assert [(s.reference, s.reason) for s in profile.skipped] == [
        ("MedicationRequest/mr-2", "intent-not-an-order"),
        ("MedicationRequest/mr-3", "restricted"),
        ("MedicationRequest/mr-4", "replaced-by-proposed"),
        ("MedicationStatement/ms-2", "effective-period-ended"),
        ("AllergyIntolerance/al-2", "verification-refuted"),
    ]
    assert profile.used_break_glass is False
    assert profile.context.age_years == 75


def test_restricted_resources_are_used_with_break_glass() -> None:
    record = PatientRecord(
        patient=make_patient(),
        requests=[make_request(meta=restricted())],
        allergies=[make_allergy(meta=restricted())],
    )
    profile = build_profile(record, now=NOW, may_see_restricted=True)
    assert len(profile.active) == len(profile.allergies) == 1
    assert profile.used_break_glass is True


# --------------------------------------------------------------------------- reading from HAPI


@pytest.fixture
def hapi() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


async def test_record_is_read_with_status_filters_and_includes(hapi: respx.MockRouter) -> None:
    requests = hapi.get(f"{BASE}/{TENANT}/MedicationRequest").respond(
        json=make_bundle(
            make_request(
                medicationCodeableConcept=None,
                medicationReference={"reference": "Medication/med-1"},
            ),
            included=(make_medication(),),
        )
    )
    statements = hapi.get(f"{BASE}/{TENANT}/MedicationStatement").respond(json=make_bundle())
    allergies = hapi.get(f"{BASE}/{TENANT}/AllergyIntolerance").respond(
        json=make_bundle(make_allergy())
    )
    weight = {
        "resourceType": "Observation",
        "id": "w-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "valueQuantity": {"value": 154, "unit": "lb", "code": "[lb_av]"},
    }
    weights = hapi.get(f"{BASE}/{TENANT}/Observation").respond(json=make_bundle(weight))
    async with FhirClient(FhirSettings(base_url=BASE)) as client:
        record = await read_patient_record(client.for_tenant(TENANT), make_patient())
    assert dict(weights.calls.last.request.url.params)["code"] == "http://loinc.org|29463-7"
    assert record.weight is not None
    assert record.weight["id"] == "w-1"
    query = dict(requests.calls.last.request.url.params)
    assert query["subject"] == "Patient/p-1"
    assert query["status"] == "active,on-hold"
    assert query["_include"] == "MedicationRequest:medication"
    assert dict(statements.calls.last.request.url.params)["status"] == "active,intended,on-hold"
    assert dict(allergies.calls.last.request.url.params)["patient"] == "Patient/p-1"
    assert [r["id"] for r in record.requests] == ["mr-1"]
    assert list(record.medications) == ["Medication/med-1"]
    assert [r["id"] for r in record.allergies] == ["al-1"]
    assert record.complete is True


async def test_record_reading_is_bounded(hapi: respx.MockRouter) -> None:
    page_url = f"{BASE}/{TENANT}?_getpages=abc&_getpagesoffset=100"
    hapi.get(f"{BASE}/{TENANT}/MedicationRequest").respond(
        json=make_bundle(make_request(), next_url=page_url)
    )
    pages = hapi.get(f"{BASE}/{TENANT}", params={"_getpages": "abc"}).respond(
        json=make_bundle(make_request(id=f"mr-{uuid.uuid4().hex[:6]}"), next_url=page_url)
    )
    hapi.get(f"{BASE}/{TENANT}/MedicationStatement").respond(json=make_bundle())
    hapi.get(f"{BASE}/{TENANT}/AllergyIntolerance").respond(json=make_bundle())
    # HAPI cannot answer the weight search: the record is read without it.
    hapi.get(f"{BASE}/{TENANT}/Observation").mock(side_effect=httpx.ConnectError("down"))
    async with FhirClient(FhirSettings(base_url=BASE)) as client:
        record = await read_patient_record(client.for_tenant(TENANT), make_patient())
    assert record.weight is None
    assert pages.call_count == MAX_PAGES - 1
    assert len(record.requests) == MAX_PAGES
    assert record.complete is False


async def test_hapi_errors_propagate_as_themselves(hapi: respx.MockRouter) -> None:
    hapi.get(f"{BASE}/{TENANT}/MedicationRequest").mock(side_effect=httpx.ConnectError("down"))
    hapi.get(f"{BASE}/{TENANT}/MedicationStatement").respond(json=make_bundle())
    hapi.get(f"{BASE}/{TENANT}/AllergyIntolerance").respond(json=make_bundle())
    hapi.get(f"{BASE}/{TENANT}/Observation").respond(json=make_bundle())
    async with FhirClient(FhirSettings(base_url=BASE)) as client:
        with pytest.raises(FhirUnavailable):  # not an ExceptionGroup: the handler maps it to 503
            await read_patient_record(client.for_tenant(TENANT), make_patient())


# --------------------------------------------------------------------------- checks


def test_explicit_list_check(tiny_kb: KnowledgeBase, tiny_resolver: DictResolver) -> None:
    request = CheckRequest.model_validate(
        {
            "proposed": [{"codings": [rxnorm(IN["ibuprofen"])], "label": "Ibuprofen"}],
            "active": [{"id": "w", "codings": [rxnorm(IN["warfarin"])]}],
            "allergies": [{"codings": [{"system": SNOMED, "code": PENICILLIN_SNOMED}]}],
        }
    )
    response = service_for(tiny_kb, tiny_resolver).check(request, ["detected-issue", "cds-card"])
    assert [i.rule_id for i in response.issues] == ["DDI-WARFARIN-NSAIDS"]
    issue = response.issues[0]
    assert [i.id for i in issue.implicated] == ["proposed-1", "w"]
    assert issue.implicated[0].label == "Ibuprofen"
    assert issue.implicated[1].label == "warfarin"  # the resolver's name: no label was given
    assert response.interruptive is (issue.display is Display.INTERRUPTIVE)
    assert response.detected_issues is not None
    assert response.detected_issues[0]["resourceType"] == "DetectedIssue"
    assert "patient" not in response.detected_issues[0]
    assert response.cds_cards is not None
    assert len(response.cds_cards) == 1


def test_unknown_codes_and_systems_are_reported(
    tiny_kb: KnowledgeBase, tiny_resolver: DictResolver
) -> None:
    request = CheckRequest.model_validate(
        {
            "proposed": [
                {"id": "a", "codings": [rxnorm("99999999")]},
                {"id": "b", "codings": [{"system": LOCAL_SYSTEM, "code": "X1"}]},
                {"id": "c", "codings": [{"system": NDC_SYSTEM, "code": "0009311131"}]},
                {"id": "d", "text": "Grandma's herbal tea"},
            ]
        }
    )
    response = service_for(tiny_kb, tiny_resolver).check(request)
    # Nothing was screened: one "unable to check" issue per proposed medication, never silence.
    assert [(i.rule_id, i.implicated[0].id) for i in response.issues] == [
        ("MS-UNABLE-TO-CHECK", "a"),
        ("MS-UNABLE-TO-CHECK", "b"),
        ("MS-UNABLE-TO-CHECK", "c"),
        ("MS-UNABLE-TO-CHECK", "d"),
    ]
    assert not response.interruptive
    assert [(i.item_id, i.status) for i in response.items] == [
        ("a", "unresolved"),
        ("b", "unresolved"),
        ("c", "unresolved"),
        ("d", "not_checkable"),
    ]
    assert [(u.item_id, u.reason) for u in response.unresolved] == [
        ("a", "unknown-code"),
        ("b", "unsupported-system"),
        ("c", "unknown-code"),
    ]
    assert [(n.item_id, n.reason) for n in response.not_checkable] == [
        ("a", "no-code-resolved"),
        ("b", "no-code-resolved"),
        ("c", "no-code-resolved"),
        ("d", "free-text-only"),
    ]
    assert response.not_checkable[1].label == f"{LOCAL_SYSTEM}|X1"


def test_the_tenant_policy_changes_the_display(
    tiny_kb: KnowledgeBase, tiny_resolver: DictResolver
) -> None:
    request = CheckRequest.model_validate(
        {
            "proposed": [{"codings": [rxnorm(IN["ibuprofen"])]}],
            "active": [{"codings": [rxnorm(IN["warfarin"])]}],
        }
    )
    policy = Policy(rule_display={"DDI-WARFARIN-NSAIDS": Display.INFORMATIONAL})
    response = service_for(tiny_kb, tiny_resolver, policy).check(request)
    assert response.issues[0].display is Display.INFORMATIONAL
    assert response.issues[0].severity is tiny_kb.interactions["DDI-WARFARIN-NSAIDS"].severity
    assert response.interruptive is False


async def test_patient_check_end_to_end(
    hapi: respx.MockRouter, tiny_kb: KnowledgeBase, tiny_resolver: DictResolver
) -> None:
    hapi.get(f"{BASE}/{TENANT}/MedicationRequest").respond(
        json=make_bundle(make_request(), make_request(id="mr-old"))
    )
    hapi.get(f"{BASE}/{TENANT}/MedicationStatement").respond(json=make_bundle())
    hapi.get(f"{BASE}/{TENANT}/AllergyIntolerance").respond(json=make_bundle(make_allergy()))
    hapi.get(f"{BASE}/{TENANT}/Observation").respond(json=make_bundle())
    service = service_for(tiny_kb, tiny_resolver)
    request = PatientCheckRequest.model_validate(
        {
            "proposed": [
                {"id": "ibu", "codings": [rxnorm(IN["ibuprofen"])]},
                {"id": "amox", "codings": [rxnorm(IN["amoxicillin"])]},
            ],
            "replaces": ["MedicationRequest/mr-old"],
        }
    )
    outcome = await service.check_patient(
        make_patient(), request, ["detected-issue"], may_see_restricted=False
    )
    response = outcome.response
    assert sorted(i.rule_id for i in response.issues) == ["ALG-SAME-GROUP", "DDI-WARFARIN-NSAIDS"]
    assert response.profile.medications_considered == 1
    assert response.profile.allergies_considered == 1
    assert [s.reason for s in response.profile.skipped] == ["replaced-by-proposed"]
    assert response.detected_issues is not None
    assert {d["patient"]["reference"] for d in response.detected_issues} == {"Patient/p-1"}
    assert outcome.used_break_glass is False


# --------------------------------------------------------------------------- KB, rules, policy


def test_rules_cover_every_kind_and_filter(tiny_kb: KnowledgeBase) -> None:
    everything = list_rules(tiny_kb)
    ids = {rule.id for rule in everything.items}
    assert ids == known_rule_ids(tiny_kb)
    assert everything.total == len(everything.items)
    warfarin = next(r for r in everything.items if r.id == "DDI-WARFARIN-NSAIDS")
    assert warfarin.sides[0] == "warfarin"
    assert warfarin.citations
    builtin = next(r for r in everything.items if r.id == "ALG-SAME-INGREDIENT")
    assert builtin.builtin is True
    assert builtin.severity is Severity.CONTRAINDICATED
    cleared = next(r for r in everything.items if r.id == "ALG-SULFA-NONABX")
    assert cleared.severity is None
    assert cleared.level is not None
    fda = list_rules(tiny_kb, source_list="fda-label")
    assert fda.items
    assert {r.source_list for r in fda.items} == {"fda-label"}
    allergy = list_rules(tiny_kb, category=IssueCategory.DRUG_ALLERGY, severity=Severity.MAJOR)
    assert {r.category for r in allergy.items} == {"drug-allergy"}
    assert {r.severity for r in allergy.items} == {Severity.MAJOR}


def test_knowledge_base_summary(tiny_kb: KnowledgeBase) -> None:
    table = RxNormTable.from_rows(
        iter([[IN["warfarin"], "IN", "warfarin", ""]]),
        iter([["00000000001", IN["warfarin"]]]),
        {"kind": "subset", "rxnorm_release": "RxNorm test release"},
    )
    summary = knowledge_base_summary(LoadedKnowledge(kb=tiny_kb, resolver=table))
    assert summary.version == tiny_kb.version
    assert [s.file for s in summary.sources] == [s.name for s in tiny_kb.sources]
    assert summary.counts.interactions == len(tiny_kb.interactions)
    assert sum(summary.counts.interactions_by_severity.values()) == len(tiny_kb.interactions)
    assert list(summary.counts.interactions_by_severity) == [
        "contraindicated",
        "major",
        "moderate",
        "minor",
    ]
    assert sum(summary.counts.cross_sensitivities_by_level.values()) == len(
        tiny_kb.cross_sensitivities
    )
    assert summary.rxnorm.kind == "subset"
    assert summary.rxnorm.release == "RxNorm test release"
    assert (summary.rxnorm.concepts, summary.rxnorm.ndc_codes) == (1, 1)
    assert summary.rxnorm.attribution == RXNORM_ATTRIBUTION


def test_policy_output_is_ordered() -> None:
    policy = TenantPolicy(
        Policy(
            interruptive=frozenset({Severity.MODERATE, Severity.CONTRAINDICATED}),
            rule_display={"B-B": Display.PASSIVE, "A-A": Display.INFORMATIONAL},
        ),
        is_default=False,
    )
    out = policy.to_out()
    assert out.interruptive_severities == [Severity.CONTRAINDICATED, Severity.MODERATE]
    assert list(out.rule_display) == ["A-A", "B-B"]
    assert TenantPolicy(Policy()).to_out().is_default is True


async def test_unknown_rule_ids_are_refused_before_storing(tiny_kb: KnowledgeBase) -> None:
    payload = PolicyIn.model_validate(
        {
            "interruptive_severities": ["contraindicated"],
            "rule_display": {"NO-SUCH-RULE": "passive"},
        }
    )
    with pytest.raises(RequestValidationFailed) as refused:
        await save_policy(cast(Any, None), uuid.uuid4(), payload, kb=tiny_kb, updated_by="user:x")
    assert refused.value.extra == {"unknown_rule_ids": ["NO-SUCH-RULE"]}


@pytest.mark.parametrize(
    "payload",
    [
        {"interruptive_severities": ["major", "major"]},
        {"interruptive_severities": ["severe"]},
        {"interruptive_severities": [], "rule_display": {"lower-case": "passive"}},
        {"interruptive_severities": [], "rule_display": {"ONC-HP-01": "loud"}},
        {"interruptive_severities": [], "extra": 1},
    ],
)
def test_policy_payload_validation(payload: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="validation error"):
        PolicyIn.model_validate(payload)
