"""UCUM units of vital signs: conversion to the canonical unit, refusal of the wrong kind."""

from __future__ import annotations

import pytest

from ehr.modules.vitals.units import UnitNotAllowed, convert, parse_unit


@pytest.mark.parametrize(
    ("value", "unit", "canonical", "expected"),
    [
        (70, "kg", "kg", 70),
        (150, "[lb_av]", "kg", 68.0388555),
        (3500, "g", "kg", 3.5),
        (65, "[in_i]", "cm", 165.1),
        (1.7, "m", "cm", 170),
        (98.6, "[degF]", "Cel", 37.0),
        (120, "mm[Hg]", "mm[Hg]", 120),
        (1.2, "/s", "/min", 72),
        (72, "{beats}/min", "/min", 72),
        (0.98, "1", "%", 98),
        (0.07, "10*3.kg", "kg", 70),  # a UCUM factor is applied, not dropped
    ],
)
def test_converts_to_the_canonical_unit(
    value: float, unit: str, canonical: str, expected: float
) -> None:
    assert convert(value, unit, canonical, what="x") == pytest.approx(expected)


def test_converts_back_into_the_submitted_unit() -> None:
    # The range of a temperature, told in the unit the caller used.
    assert convert(45, "Cel", "[degF]", what="x") == pytest.approx(113)
    assert convert(25, "Cel", "[degF]", what="x") == pytest.approx(77)


@pytest.mark.parametrize(
    ("unit", "canonical"),
    [
        ("cm", "kg"),  # wrong dimension
        ("mmHg", "mm[Hg]"),  # not UCUM (the UCUM code is mm[Hg])
        ("degF", "Cel"),  # not UCUM
        ("lb", "kg"),  # not UCUM
        ("kg/", "kg"),  # malformed
        ("Cel/s", "Cel"),
    ],
)
def test_refuses_units_of_another_kind_or_not_ucum(unit: str, canonical: str) -> None:
    with pytest.raises(UnitNotAllowed) as raised:
        convert(1, unit, canonical, what="body weight")
    assert raised.value.code == "unit_not_allowed"
    assert raised.value.status_code == 422
    assert raised.value.extra["unit"] == unit


def test_parse_unit_answers_none_for_invalid_ucum() -> None:
    assert parse_unit("not-a-unit") is None
    assert parse_unit("kg") is not None
