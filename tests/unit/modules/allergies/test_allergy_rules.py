"""The allergy rules without HAPI: substances, reactions, dates, the FHIR shape the
medication-safety engine reads, and the list order."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from ehr.core.errors import RequestValidationFailed
from ehr.fhir import etag_of
from ehr.modules.allergies.schemas import AllergyCreate
from ehr.modules.allergies.service import (
    RXNORM_SYSTEM,
    SNOMED_SYSTEM,
    check_allergy,
    fill_resource,
    sort_allergies,
    to_allergy,
)
from ehr.modules.medication_safety import allergy_from_fhir

TODAY = dt.date(2026, 12, 7)
NDC = "http://hl7.org/fhir/sid/ndc"
ERROR = "entered-in-error"
PENICILLIN = {"system": SNOMED_SYSTEM, "code": "764146007", "display": "Penicillin"}


def payload(**overrides: Any) -> AllergyCreate:
    body: dict[str, Any] = {"substance": PENICILLIN, "category": ["medication"]}
    body.update(overrides)
    return AllergyCreate.model_validate(body)


def refusal(model: AllergyCreate) -> str:
    with pytest.raises(RequestValidationFailed) as caught:
        check_allergy(model, patient_id="p1", today=TODAY)
    return caught.value.code


def test_valid_allergies_pass() -> None:
    check_allergy(payload(), patient_id="p1", today=TODAY)
    check_allergy(
        payload(substance={"system": RXNORM_SYSTEM, "code": "723"}, patient_id="p1"),
        patient_id="p1",
        today=TODAY,
    )
    check_allergy(
        payload(substance=None, substance_text="Grandma's cough syrup"),
        patient_id="p1",
        today=TODAY,
    )
    check_allergy(
        payload(
            reactions=[
                {"manifestation": {"system": SNOMED_SYSTEM, "code": "271807003"}},
                {"manifestation_text": "Itching", "severity": "mild"},
            ]
        ),
        patient_id="p1",
        today=TODAY,
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"patient_id": "p2"}, "patient_mismatch"),
        ({"substance": None}, "substance_required"),
        ({"substance": {"system": "http://example.org/drugs", "code": "1"}}, "unknown_code_system"),
        (
            {"substance": {"system": "http://hl7.org/fhir/sid/ndc", "code": "1"}},
            "unknown_code_system",
        ),
        ({"substance": {"system": RXNORM_SYSTEM, "code": "RX723"}}, "invalid_code"),
        ({"substance": {"system": RXNORM_SYSTEM, "code": "0723"}}, "invalid_code"),
        ({"substance": {"system": SNOMED_SYSTEM, "code": "764146008"}}, "invalid_code"),
        ({"onset": "2026-12-09"}, "date_in_future"),
        ({"reactions": [{"severity": "severe"}]}, "manifestation_required"),
        (
            {"reactions": [{"manifestation": {"system": RXNORM_SYSTEM, "code": "723"}}]},
            "unknown_code_system",
        ),
        (
            {"reactions": [{"manifestation": {"system": SNOMED_SYSTEM, "code": "271807004"}}]},
            "invalid_code",
        ),
    ],
)
def test_rule_refusals(overrides: dict[str, Any], expected: str) -> None:
    assert refusal(payload(**overrides)) == expected


@pytest.mark.parametrize(
    "overrides",
    [
        {"verification_status": "entered-in-error"},
        {"clinical_status": "remission"},
        {"type": "sensitivity"},
        {"category": ["drug"]},
        {"criticality": "medium"},
        {"reactions": [{"manifestation_text": "Rash", "severity": "fatal"}]},
        {"reactions": [{"manifestation_text": "Rash", "onset": "2020-01-01"}]},
        {"patient": {"reference": "Patient/p2"}},
    ],
)
def test_schema_refusals(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        payload(**overrides)


def _written(model: AllergyCreate) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": "a1",
        "meta": {"versionId": "1"},
        "patient": {"reference": "Patient/p1"},
    }
    fill_resource(resource, model)
    return resource


def test_what_is_written_is_what_medication_safety_reads() -> None:
    resource = _written(payload(criticality="high", clinical_status="active"))
    found = allergy_from_fhir(resource, may_see_restricted=False)
    assert not hasattr(found, "reason"), found
    assert found.codings[0].code == "764146007"  # type: ignore[union-attr]
    assert found.criticality == "high"  # type: ignore[union-attr]
    shown = to_allergy(resource, "p1")
    assert shown.checkable_by_medication_safety
    assert shown.medication_safety_note is None


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"verification_status": "refuted"}, "verification-refuted"),
        ({"clinical_status": "resolved"}, "clinical-status-not-active"),
        ({"category": ["food"]}, "not-a-medication-allergy"),
    ],
)
def test_statuses_the_engine_leaves_out(overrides: dict[str, Any], reason: str) -> None:
    found = allergy_from_fhir(_written(payload(**overrides)), may_see_restricted=False)
    assert getattr(found, "reason", None) == reason


def test_free_text_substance_is_said_to_be_uncheckable() -> None:
    shown = to_allergy(_written(payload(substance=None, substance_text="Some syrup")), "p1")
    assert shown.substance is None
    assert shown.substance_text == "Some syrup"
    assert not shown.checkable_by_medication_safety
    assert shown.medication_safety_note is not None
    assert "free text" in shown.medication_safety_note


def test_food_allergy_is_not_checked_by_medication_safety() -> None:
    peanut = {"system": SNOMED_SYSTEM, "code": "256349002"}
    shown = to_allergy(_written(payload(substance=peanut, category=["food"])), "p1")
    assert not shown.checkable_by_medication_safety


def test_business_view_round_trip() -> None:
    model = payload(
        substance_text="Penicillin",
        type="allergy",
        category=["medication", "medication"],
        criticality="high",
        onset="2001-02-03",
        reactions=[
            {
                "manifestation": {"system": SNOMED_SYSTEM, "code": "39579001"},
                "manifestation_text": "Anaphylaxis",
                "severity": "severe",
            }
        ],
        note="Collapsed in 2001.",
    )
    resource = _written(model)
    assert resource["category"] == ["medication"]
    shown = to_allergy(resource, "p1")
    assert etag_of(resource) == 'W/"1"'
    assert shown.version == "1"
    assert shown.type == "allergy"
    assert shown.onset == "2001-02-03"
    assert shown.reactions[0].severity == "severe"
    assert shown.reactions[0].manifestation is not None
    assert shown.reactions[0].manifestation.code == "39579001"
    assert shown.reactions[0].manifestation_text == "Anaphylaxis"
    assert shown.note == "Collapsed in 2001."
    # An update without the optional fields removes them.
    fill_resource(resource, payload())
    assert "reaction" not in resource
    assert "onsetDateTime" not in resource
    assert "note" not in resource


def _stored(allergy_id: str, clinical: str | None, recorded: str, **fields: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {"id": allergy_id, "recordedDate": recorded, **fields}
    if clinical is not None:
        resource["clinicalStatus"] = {"coding": [{"code": clinical}]}
    return resource


def test_active_first_high_criticality_first() -> None:
    resources = [
        _stored("resolved", "resolved", "2025-01-01"),
        _stored("active-low-new", "active", "2024-01-01", criticality="low"),
        _stored(
            "error",
            None,
            "2026-01-01",
            verificationStatus={"coding": [{"code": "entered-in-error"}]},
        ),
        _stored("active-high-old", "active", "2010-01-01", criticality="high"),
        _stored("active-new", "active", "2025-06-01"),
    ]
    assert [r["id"] for r in sort_allergies(resources)] == [
        "active-high-old",
        "active-new",
        "active-low-new",
        "resolved",
        "error",
    ]
