"""The problem-list rules without HAPI: codes, dates, statuses, the FHIR shape and the order."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from ehr.core.errors import RequestValidationFailed
from ehr.fhir import etag_of
from ehr.modules.clinical_record import recorder_reference
from ehr.modules.clinical_record.codes import verhoeff_ok
from ehr.modules.problems.codes import (
    ICD10CM_SYSTEM,
    SNOMED_SYSTEM,
    check_problem_code,
    is_icd10cm_code,
    is_snomed_ct_concept,
)
from ehr.modules.problems.schemas import ProblemCreate
from ehr.modules.problems.service import (
    check_problem as check,
)
from ehr.modules.problems.service import (
    sort_problems,
    to_problem,
)
from ehr.platform.auth.principal import Principal

TODAY = dt.date(2026, 12, 7)
E11_9 = {"system": ICD10CM_SYSTEM, "code": "E11.9"}


def payload(**overrides: Any) -> ProblemCreate:
    body: dict[str, Any] = {"code": {"system": ICD10CM_SYSTEM, "code": "E11.9"}}
    body.update(overrides)
    return ProblemCreate.model_validate(body)


def refusal(model: ProblemCreate, patient_id: str = "p1") -> str:
    with pytest.raises(RequestValidationFailed) as caught:
        check(model, patient_id=patient_id, today=TODAY)
    return caught.value.code


@pytest.mark.parametrize("code", ["E11.9", "I10", "S72.001A", "T36.0X1A", "C7A.010", "U07.1"])
def test_icd10cm_codes_accepted(code: str) -> None:
    assert is_icd10cm_code(code)


@pytest.mark.parametrize("code", ["e11.9", "E1", "E11.", "E11.99999", "1E11", "UA1", "E11-9", ""])
def test_icd10cm_shapes_refused(code: str) -> None:
    assert not is_icd10cm_code(code)


@pytest.mark.parametrize("code", ["38341003", "44054006", "73211009", "764146007", "195967001"])
def test_snomed_concepts_accepted(code: str) -> None:
    assert is_snomed_ct_concept(code)


@pytest.mark.parametrize(
    "code",
    [
        "38341004",  # check digit off by one
        "38341013",  # a description id (partition 01), not a concept
        "012345",  # leading zero
        "12345",  # too short
        "1234567890123456789",  # too long
        "3834100X",
    ],
)
def test_snomed_ids_refused(code: str) -> None:
    assert not is_snomed_ct_concept(code)


def test_verhoeff_catches_a_transposition() -> None:
    assert verhoeff_ok("38341003")
    assert not verhoeff_ok("83341003")


@pytest.mark.parametrize(
    ("system", "code", "expected"),
    [
        ("http://loinc.org", "1234-5", "unknown_code_system"),
        ("urn:oid:2.16.840.1.113883.6.90", "E11.9", "unknown_code_system"),
        (ICD10CM_SYSTEM, "38341003", "invalid_code"),
        (SNOMED_SYSTEM, "E11.9", "invalid_code"),
    ],
)
def test_code_refusals_have_stable_codes(system: str, code: str, expected: str) -> None:
    with pytest.raises(RequestValidationFailed) as caught:
        check_problem_code(system, code)
    assert caught.value.code == expected
    assert caught.value.status_code == 422


def test_a_valid_problem_passes() -> None:
    check(
        payload(clinical_status="resolved", onset="2020-01-01", abatement="2020-06-01"),
        patient_id="p1",
        today=TODAY,
    )
    check(payload(patient_id="p1", onset=TODAY.isoformat()), patient_id="p1", today=TODAY)


def test_a_date_of_tomorrow_is_allowed_for_the_time_zones_ahead_of_utc() -> None:
    tomorrow = (TODAY + dt.timedelta(days=1)).isoformat()
    check(payload(onset=tomorrow), patient_id="p1", today=TODAY)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"patient_id": "p2"}, "patient_mismatch"),
        ({"onset": "2026-12-09"}, "date_in_future"),
        ({"clinical_status": "resolved", "abatement": "2026-12-09"}, "date_in_future"),
        ({"clinical_status": "active", "abatement": "2020-01-01"}, "abatement_not_allowed"),
        ({"clinical_status": "relapse", "abatement": "2020-01-01"}, "abatement_not_allowed"),
        ({"clinical_status": "recurrence", "abatement": "2020-01-01"}, "abatement_not_allowed"),
        (
            {"clinical_status": "remission", "onset": "2021-01-01", "abatement": "2020-01-01"},
            "abatement_before_onset",
        ),
        ({"code": {"system": "http://example.org", "code": "X"}}, "unknown_code_system"),
    ],
)
def test_rule_refusals(overrides: dict[str, Any], expected: str) -> None:
    assert refusal(payload(**overrides)) == expected


@pytest.mark.parametrize("status", ["inactive", "remission", "resolved"])
def test_ended_statuses_may_carry_abatement(status: str) -> None:
    check(payload(clinical_status=status, abatement="2020-01-01"), patient_id="p1", today=TODAY)


@pytest.mark.parametrize(
    "body",
    [
        {
            "code": {"system": ICD10CM_SYSTEM, "code": "E11.9"},
            "verification_status": "entered-in-error",
        },
        {"code": {"system": ICD10CM_SYSTEM, "code": "E11.9"}, "clinical_status": "unknown"},
        {"code": {"system": ICD10CM_SYSTEM, "code": "E11.9"}, "onset": 20200101},
        {"code": {"system": ICD10CM_SYSTEM, "code": "E11.9", "version": "2024"}},
        {"code": {"system": ICD10CM_SYSTEM, "code": "E11.9"}, "subject": "Patient/p2"},
    ],
)
def test_schema_refusals(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ProblemCreate.model_validate(body)


def _condition(
    condition_id: str, clinical: str | None, recorded: str, verification: str = "confirmed"
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": condition_id,
        "recordedDate": recorded,
        "verificationStatus": {"coding": [{"code": verification}]},
    }
    if clinical is not None:
        resource["clinicalStatus"] = {"coding": [{"code": clinical}]}
    return resource


def test_active_problems_come_first_then_newest() -> None:
    resources = [
        _condition("resolved-new", "resolved", "2025-01-01"),
        _condition("active-old", "active", "2020-01-01"),
        _condition("error", None, "2026-01-01", "entered-in-error"),
        _condition("relapse-new", "relapse", "2024-01-01"),
        _condition("inactive-old", "inactive", "2019-01-01"),
    ]
    assert [r["id"] for r in sort_problems(resources)] == [
        "relapse-new",
        "active-old",
        "resolved-new",
        "inactive-old",
        "error",
    ]


def test_business_view_of_a_condition() -> None:
    resource = {
        "resourceType": "Condition",
        "id": "c1",
        "meta": {"versionId": "3"},
        "clinicalStatus": {"coding": [{"code": "resolved"}]},
        "verificationStatus": {"coding": [{"code": "confirmed"}]},
        "code": {"coding": [{"system": SNOMED_SYSTEM, "code": "38341003"}], "text": "HTN"},
        "onsetDateTime": "2020-01-01",
        "abatementDateTime": "2021-01-01",
        "recorder": {"identifier": {"system": "urn:ehr:user", "value": "u1"}, "display": "dr"},
        "note": [{"text": "first"}, {"text": "second"}],
    }
    problem = to_problem(resource, "p1")
    assert problem.version == "3"
    assert etag_of(resource) == 'W/"3"'
    assert problem.code is not None
    assert problem.code.code == "38341003"
    assert problem.text == "HTN"
    assert (problem.onset, problem.abatement) == ("2020-01-01", "2021-01-01")
    assert problem.recorder is not None
    assert problem.recorder.user_id == "u1"
    assert problem.note == "first\n\nsecond"


def test_a_status_outside_the_value_set_is_shown_as_absent() -> None:
    problem = to_problem(_condition("c1", "bogus", "2020-01-01", "nonsense"), "p1")
    assert problem.clinical_status is None
    assert problem.verification_status is None


def test_recorder_is_the_user() -> None:
    subject = uuid.uuid4()
    principal = Principal(
        kind="user",
        subject=subject,
        tenant="t",
        tenant_id=uuid.uuid4(),
        roles=frozenset({"physician"}),
        username="dr.who",
    )
    assert recorder_reference(principal) == {
        "identifier": {"system": "urn:ehr:user", "value": str(subject)},
        "display": "dr.who",
    }
