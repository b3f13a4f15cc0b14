"""The rules a vital sign passes before it is stored: codes, ranges, BP components, BMI."""

from __future__ import annotations

import pytest

from ehr.modules.vitals.catalogue import BMI, BODY_WEIGHT, OXYGEN_SATURATION
from ehr.modules.vitals.rules import (
    ComponentsInvalid,
    DuplicateMeasurement,
    UnknownVitalCode,
    ValueOutOfRange,
    derive_bmi,
    measure,
    measure_all,
)
from ehr.modules.vitals.units import UnitNotAllowed


def test_a_weight_in_pounds_is_stored_in_kilograms() -> None:
    measured = measure("29463-7", "[lb_av]", value=154)
    assert measured.vital is BODY_WEIGHT
    assert measured.value == 69.85


def test_a_temperature_in_fahrenheit_is_stored_in_celsius_to_one_decimal() -> None:
    assert measure("8310-5", "[degF]", value=101.3).value == 38.5


def test_pulse_oximetry_code_is_oxygen_saturation() -> None:
    measured = measure("59408-5", "%", value=97)
    assert measured.vital is OXYGEN_SATURATION
    assert measured.submitted_code == "59408-5"


@pytest.mark.parametrize(
    ("code", "unit", "value"),
    [
        ("8310-5", "Cel", 24.9),
        ("8310-5", "Cel", 45.1),
        ("8867-4", "/min", 19),
        ("8867-4", "/min", 301),
        ("9279-1", "/min", 1),
        ("9279-1", "/min", 81),
        ("2708-6", "%", 39),
        ("2708-6", "%", 101),
        ("29463-7", "kg", 0.1),
        ("29463-7", "kg", 501),
        ("8302-2", "cm", 19),
        ("8302-2", "cm", 281),
    ],
)
def test_impossible_values_are_refused(code: str, unit: str, value: float) -> None:
    with pytest.raises(ValueOutOfRange) as raised:
        measure(code, unit, value=value)
    assert raised.value.code == "value_out_of_range"
    assert raised.value.status_code == 422


def test_the_range_is_told_in_the_submitted_unit() -> None:
    with pytest.raises(ValueOutOfRange) as raised:
        measure("8310-5", "[degF]", value=120)
    assert "between 77 and 113 [degF]" in raised.value.detail
    assert raised.value.extra["low"] == 77
    assert raised.value.extra["high"] == 113


def test_boundaries_are_possible() -> None:
    assert measure("8310-5", "Cel", value=25).value == 25
    assert measure("8310-5", "Cel", value=45).value == 45
    assert measure("2708-6", "%", value=100).value == 100


def test_blood_pressure_is_one_measurement_with_two_components() -> None:
    measured = measure("85354-9", "mm[Hg]", systolic=120, diastolic=80)
    assert (measured.systolic, measured.diastolic, measured.value) == (120, 80, None)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"systolic": 120},
        {"diastolic": 80},
        {"value": 120},
        {"systolic": 120, "diastolic": 80, "value": 100},
    ],
)
def test_blood_pressure_needs_both_components_and_no_value(kwargs: dict[str, float]) -> None:
    with pytest.raises(ComponentsInvalid) as raised:
        measure("85354-9", "mm[Hg]", **kwargs)
    assert raised.value.code == "components_invalid"


def test_diastolic_must_be_below_systolic() -> None:
    with pytest.raises(ValueOutOfRange, match="below the systolic"):
        measure("85354-9", "mm[Hg]", systolic=90, diastolic=95)


@pytest.mark.parametrize(("systolic", "diastolic"), [(39, 20), (301, 80), (120, 19), (250, 201)])
def test_blood_pressure_components_have_their_own_ranges(systolic: float, diastolic: float) -> None:
    with pytest.raises(ValueOutOfRange):
        measure("85354-9", "mm[Hg]", systolic=systolic, diastolic=diastolic)


def test_systolic_alone_points_at_the_panel() -> None:
    with pytest.raises(ComponentsInvalid, match="85354-9"):
        measure("8480-6", "mm[Hg]", value=120)


def test_a_vital_other_than_bp_takes_no_components() -> None:
    with pytest.raises(ComponentsInvalid):
        measure("8867-4", "/min", value=70, systolic=120)
    with pytest.raises(ComponentsInvalid):
        measure("8867-4", "/min")


def test_unknown_codes_are_refused() -> None:
    with pytest.raises(UnknownVitalCode) as raised:
        measure("2345-7", "mg/dL", value=90)  # glucose: a lab result, not a vital sign
    assert raised.value.code == "unknown_vital_code"


def test_wrong_unit_for_the_vital_is_refused() -> None:
    with pytest.raises(UnitNotAllowed):
        measure("29463-7", "cm", value=70)
    with pytest.raises(UnitNotAllowed):
        measure("8867-4", "mm[Hg]", value=70)


def test_a_set_takes_each_vital_once() -> None:
    with pytest.raises(DuplicateMeasurement):
        measure_all(
            [("2708-6", "%", 97, None, None), ("59408-5", "%", 98, None, None)]  # same vital
        )
    assert (
        len(measure_all([("8867-4", "/min", 70, None, None), ("9279-1", "/min", 14, None, None)]))
        == 2
    )


def test_bmi_of_a_weight_and_a_height() -> None:
    assert derive_bmi(70, 175) == 22.9
    assert derive_bmi(3.5, 50) == 14.0


def test_no_bmi_of_an_impossible_pair() -> None:
    assert derive_bmi(500, 20) is None  # 12,500 kg/m2
    assert derive_bmi(0, 170) is None
    assert BMI.unit == "kg/m2"
