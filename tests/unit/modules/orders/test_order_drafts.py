"""The order documents and the drafts they build (pure: no I/O)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from ehr.modules import orders
from ehr.modules.clinical_record import InvalidCode, PatientMismatch, UnknownCodeSystem
from ehr.modules.orders.codes import UnitNotAllowed, is_loinc_code, loinc_check_digit
from ehr.platform.auth.principal import Principal

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NOW = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)
PHYSICIAN = Principal(
    kind="user",
    subject=uuid.UUID("00000000-0000-0000-0000-000000000001"),
    tenant="DEFAULT",
    tenant_id=uuid.UUID("00000000-0000-0000-0000-0000000000aa"),
    roles=frozenset({"physician"}),
    username="dr.house",
)
ORDER: TypeAdapter[Any] = TypeAdapter(orders.OrderCreate)


def _order(document: dict[str, Any]) -> Any:
    return ORDER.validate_python(document)


def _lab(code: str = "2823-3", system: str = LOINC, **extra: Any) -> Any:
    return _order({"kind": "lab", "code": {"system": system, "code": code}, **extra})


def _medication(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "medication",
        "medication": {"system": RXNORM, "code": "855332", "display": "warfarin 5 MG"},
        "dosage": {
            "dose": {"value": 5, "unit": "mg"},
            "route": {"system": SNOMED, "code": "26643006", "display": "Oral"},
            "frequency": 1,
            "period": 1,
            "period_unit": "d",
        },
        "dispense": {"quantity": {"value": 30, "unit": "{tbl}"}, "supply_days": 30},
        "repeats": 2,
        **extra,
    }


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        ("2823-3", True),  # potassium
        ("2345-7", True),  # glucose
        ("6598-7", True),  # troponin T
        ("718-7", True),  # hemoglobin
        ("2823-4", False),  # wrong check digit
        ("2823", False),
        ("28233-", False),
        ("12345678-9", False),
    ],
)
def test_loinc_codes_are_checked_with_their_check_digit(code: str, valid: bool) -> None:
    assert is_loinc_code(code) is valid


def test_loinc_check_digit_is_the_mod_10_digit() -> None:
    assert loinc_check_digit("2823") == 3
    assert loinc_check_digit("34534") == 8


def test_a_lab_draft_is_a_loinc_coded_service_request() -> None:
    draft = orders.build_draft("p1", _lab(priority="stat"), PHYSICIAN, now=NOW)
    assert draft["resourceType"] == "ServiceRequest"
    assert (draft["status"], draft["intent"], draft["priority"]) == ("draft", "order", "stat")
    assert draft["subject"] == {"reference": "Patient/p1"}
    assert draft["code"]["coding"] == [{"system": LOINC, "code": "2823-3"}]
    assert draft["category"][0]["coding"][0]["code"] == "108252007"
    assert draft["requester"]["identifier"]["value"] == str(PHYSICIAN.subject)
    assert draft["authoredOn"] == "2026-12-07T08:00:00+00:00"
    assert "id" not in draft


def test_a_requester_reference_is_taken_as_is() -> None:
    who = {"reference": "Practitioner/7", "display": "Dr 7"}
    assert orders.build_draft("p1", _lab(), who)["requester"] == who


@pytest.mark.parametrize(
    ("system", "code", "refusal"),
    [
        ("http://snomed.info/sct", "2823-3", UnknownCodeSystem),
        ("http://example.org/local", "K", UnknownCodeSystem),
        (LOINC, "2823-4", InvalidCode),
        (LOINC, "potassium", InvalidCode),
    ],
)
def test_a_lab_code_outside_loinc_or_malformed_is_refused(
    system: str, code: str, refusal: type[Exception]
) -> None:
    with pytest.raises(refusal) as raised:
        orders.build_draft("p1", _lab(code, system), PHYSICIAN)
    assert getattr(raised.value, "status_code", None) == 422


def test_imaging_takes_snomed_loinc_or_cpt_with_body_site_and_reason() -> None:
    order = _order(
        {
            "kind": "imaging",
            "code": {"system": "http://www.ama-assn.org/go/cpt", "code": "71046"},
            "body_site": {"system": SNOMED, "code": "51185008", "display": "Thorax"},
            "reason": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "R07.9"}],
        }
    )
    draft = orders.build_draft("p1", order, PHYSICIAN)
    assert draft["category"][0]["coding"][0]["code"] == "363679005"
    assert draft["bodySite"][0]["coding"][0]["code"] == "51185008"
    assert draft["reasonCode"][0]["coding"][0]["code"] == "R07.9"
    bad_site = order.model_copy(
        update={"body_site": order.body_site.model_copy(update={"code": "51185009"})}
    )
    with pytest.raises(InvalidCode):
        orders.build_draft("p1", bad_site, PHYSICIAN)


def test_a_referral_names_its_specialty_performer_and_reason() -> None:
    order = _order(
        {
            "kind": "referral",
            "specialty": {"system": SNOMED, "code": "394579002", "display": "Cardiology"},
            "performer": {"reference": "Practitioner/12", "display": "Dr Heart"},
            "reason": [{"system": SNOMED, "code": "29857009", "display": "Chest pain"}],
        }
    )
    draft = orders.build_draft("p1", order, PHYSICIAN)
    assert draft["code"]["coding"][0]["code"] == "3457005"
    assert draft["performerType"]["coding"][0]["code"] == "394579002"
    assert draft["performer"] == [{"reference": "Practitioner/12", "display": "Dr Heart"}]
    with pytest.raises(ValidationError):
        _order({"kind": "referral", "specialty": {"system": SNOMED, "code": "394579002"}})


def test_a_medication_draft_has_structured_dosage_quantity_and_repeats() -> None:
    draft = orders.build_draft("p1", _order(_medication()), PHYSICIAN)
    assert draft["resourceType"] == "MedicationRequest"
    assert draft["medicationCodeableConcept"]["coding"][0]["code"] == "855332"
    dosage = draft["dosageInstruction"][0]
    assert dosage["doseAndRate"][0]["doseQuantity"] == {
        "value": 5,
        "unit": "mg",
        "system": "http://unitsofmeasure.org",
        "code": "mg",
    }
    assert dosage["route"]["coding"][0]["code"] == "26643006"
    assert dosage["timing"]["repeat"] == {"frequency": 1, "period": 1, "periodUnit": "d"}
    assert draft["dispenseRequest"]["quantity"]["code"] == "{tbl}"
    assert draft["dispenseRequest"]["numberOfRepeatsAllowed"] == 2
    assert draft["dispenseRequest"]["expectedSupplyDuration"]["code"] == "d"


def test_a_medication_outside_rxnorm_or_a_non_ucum_dose_unit_is_refused() -> None:
    with pytest.raises(UnknownCodeSystem):
        orders.build_draft(
            "p1",
            _order(_medication(medication={"system": SNOMED, "code": "372756006"})),
            PHYSICIAN,
        )
    document = _medication()
    document["dosage"]["dose"]["unit"] = "spoonful"
    with pytest.raises(UnitNotAllowed) as raised:
        orders.build_draft("p1", _order(document), PHYSICIAN)
    assert raised.value.code == "unit_not_allowed"


def test_the_body_names_the_path_patient_or_nobody() -> None:
    with pytest.raises(PatientMismatch):
        orders.build_draft("p1", _lab(patient_id="p2"), PHYSICIAN)


def test_an_unknown_kind_or_field_is_a_schema_error() -> None:
    with pytest.raises(ValidationError):
        _order({"kind": "diet", "code": {"system": LOINC, "code": "2823-3"}})
    with pytest.raises(ValidationError):
        _order({"kind": "lab", "code": {"system": LOINC, "code": "2823-3"}, "colour": "red"})
