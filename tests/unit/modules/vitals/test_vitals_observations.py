"""Vital-sign Observations as stored (vital-signs profile) and as shown (our document)."""

from __future__ import annotations

import datetime as dt

from ehr.modules.vitals.observations import observation, to_vital
from ehr.modules.vitals.rules import measure

TAKEN = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)


def test_a_blood_pressure_is_one_observation_with_two_components() -> None:
    resource = observation(
        "p1", measure("85354-9", "mm[Hg]", systolic=128, diastolic=82), effective=TAKEN
    )
    assert resource["status"] == "final"
    assert resource["category"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
        "code": "vital-signs",
        "display": "Vital Signs",
    }
    assert resource["code"]["coding"][0]["code"] == "85354-9"
    assert resource["subject"] == {"reference": "Patient/p1"}
    assert resource["effectiveDateTime"] == "2026-03-01T09:30:00+00:00"
    assert "valueQuantity" not in resource
    systolic, diastolic = resource["component"]
    assert systolic["code"]["coding"][0]["code"] == "8480-6"
    assert systolic["valueQuantity"] == {
        "value": 128,
        "unit": "mmHg",
        "system": "http://unitsofmeasure.org",
        "code": "mm[Hg]",
    }
    assert diastolic["code"]["coding"][0]["code"] == "8462-4"
    assert diastolic["valueQuantity"]["value"] == 82
    assert "http://hl7.org/fhir/StructureDefinition/bp" in resource["meta"]["profile"]


def test_a_weight_in_pounds_is_stored_in_kilograms_with_the_encounter() -> None:
    resource = observation(
        "p1", measure("29463-7", "[lb_av]", value=200), effective=TAKEN, encounter_id="e9"
    )
    assert resource["valueQuantity"] == {
        "value": 90.72,
        "unit": "kg",
        "system": "http://unitsofmeasure.org",
        "code": "kg",
    }
    assert resource["encounter"] == {"reference": "Encounter/e9"}


def test_pulse_oximetry_keeps_both_loinc_codes() -> None:
    resource = observation("p1", measure("59408-5", "%", value=96), effective=TAKEN)
    assert [c["code"] for c in resource["code"]["coding"]] == ["2708-6", "59408-5"]
    assert to_vital({**resource, "id": "o1"}).code == "2708-6"


def test_the_document_shows_values_version_and_derivation() -> None:
    bmi = observation(
        "p1",
        measure("39156-5", "kg/m2", value=22.9),
        effective=TAKEN,
        derived_from=("Observation/w1", "Observation/h1"),
    )
    shown = to_vital({**bmi, "id": "b1", "meta": {**bmi["meta"], "versionId": "2"}})
    assert shown.id == "b1"
    assert shown.version == "2"
    assert shown.code == "39156-5"
    assert (shown.value, shown.unit) == (22.9, "kg/m2")
    assert shown.derived_from == ["w1", "h1"]
    assert shown.effective == TAKEN
    assert shown.status == "final"


def test_the_document_of_a_blood_pressure_lists_its_components() -> None:
    resource = observation(
        "p1", measure("85354-9", "mm[Hg]", systolic=140, diastolic=90), effective=TAKEN
    )
    shown = to_vital({**resource, "id": "bp1"})
    assert shown.value is None
    assert [(c.code, c.value, c.unit) for c in shown.components] == [
        ("8480-6", 140, "mm[Hg]"),
        ("8462-4", 90, "mm[Hg]"),
    ]
