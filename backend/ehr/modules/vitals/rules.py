"""The rules a measurement must pass before it is stored (pure: no FHIR, no I/O).

A measurement names its vital sign by LOINC code, its value is converted to the canonical UCUM
unit (:mod:`ehr.modules.vitals.units`) and checked against the possible range; a blood pressure
is one panel (85354-9) with a systolic and a diastolic component, the diastolic below the
systolic. A BMI is derived from a weight and a height in the canonical units.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ehr.core.errors import RequestValidationFailed
from ehr.modules.vitals.catalogue import (
    BLOOD_PRESSURE,
    BMI,
    DIASTOLIC,
    SYSTOLIC,
    VitalSign,
    vital_of_code,
)
from ehr.modules.vitals.units import convert

__all__ = [
    "ComponentsInvalid",
    "DuplicateMeasurement",
    "Measured",
    "UnknownVitalCode",
    "ValueOutOfRange",
    "derive_bmi",
    "measure",
    "measure_all",
]


class UnknownVitalCode(RequestValidationFailed):
    """The LOINC code is not a vital sign this API records."""

    code = "unknown_vital_code"
    title = "Unknown vital-sign code"


class ComponentsInvalid(RequestValidationFailed):
    """A blood pressure without both components, or another vital with components."""

    code = "components_invalid"
    title = "Invalid measurement components"


class ValueOutOfRange(RequestValidationFailed):
    """The value cannot be a real measurement (outside the physiologically possible range)."""

    code = "value_out_of_range"
    title = "Value out of the possible range"


class DuplicateMeasurement(RequestValidationFailed):
    """The same vital sign twice in one set."""

    code = "duplicate_measurement"
    title = "Duplicate measurement"


@dataclass(frozen=True, slots=True)
class Measured:
    """A measurement that passed the rules: values in the canonical unit, rounded."""

    vital: VitalSign
    submitted_code: str
    value: float | None = None
    systolic: float | None = None
    diastolic: float | None = None


def _fmt(number: float) -> str:
    text = f"{number:.2f}".rstrip("0").rstrip(".")
    return text or "0"


def _checked(value: float, unit: str, vital: VitalSign) -> float:
    """``value`` (in ``unit``) in the canonical unit, refused when outside the possible range."""
    what = vital.display.lower()
    canonical = convert(value, unit, vital.unit, what=what)
    if not vital.low <= canonical <= vital.high:
        low = convert(vital.low, vital.unit, unit, what=what)
        high = convert(vital.high, vital.unit, unit, what=what)
        raise ValueOutOfRange(
            f"{vital.display} {_fmt(value)} {unit} is not possible: "
            f"it must be between {_fmt(low)} and {_fmt(high)} {unit}",
            extra={
                "loinc": vital.code,
                "unit": unit,
                "low": round(low, 2),
                "high": round(high, 2),
            },
        )
    return round(canonical, vital.decimals)


def measure(
    code: str,
    unit: str,
    *,
    value: float | None = None,
    systolic: float | None = None,
    diastolic: float | None = None,
) -> Measured:
    """Apply the rules to one submitted measurement."""
    vital = vital_of_code(code)
    if vital is None:
        if code in (SYSTOLIC.code, DIASTOLIC.code):
            raise ComponentsInvalid(
                f"Record systolic and diastolic pressure together as {BLOOD_PRESSURE.code} "
                "with `systolic` and `diastolic`",
                extra={"loinc": code},
            )
        raise UnknownVitalCode(
            f"LOINC {code} is not a vital sign this API records", extra={"loinc": code}
        )
    if vital is BLOOD_PRESSURE:
        if systolic is None or diastolic is None or value is not None:
            raise ComponentsInvalid(
                f"A blood pressure ({BLOOD_PRESSURE.code}) needs `systolic` and `diastolic`, "
                "and no `value`",
                extra={"loinc": code},
            )
        high = _checked(systolic, unit, SYSTOLIC)
        low = _checked(diastolic, unit, DIASTOLIC)
        if low >= high:
            raise ValueOutOfRange(
                "The diastolic pressure must be below the systolic pressure",
                extra={"loinc": code},
            )
        return Measured(vital, code, systolic=high, diastolic=low)
    if value is None or systolic is not None or diastolic is not None:
        raise ComponentsInvalid(
            f"{vital.display} ({code}) needs `value` (no `systolic`/`diastolic`)",
            extra={"loinc": code},
        )
    return Measured(vital, code, value=_checked(value, unit, vital))


Submitted = tuple[str, str, float | None, float | None, float | None]


def measure_all(submitted: Iterable[Submitted]) -> list[Measured]:
    """Apply the rules to a set ``(code, unit, value, systolic, diastolic)``: each vital once."""
    measured: list[Measured] = []
    seen: set[str] = set()
    for code, unit, value, systolic, diastolic in submitted:
        one = measure(code, unit, value=value, systolic=systolic, diastolic=diastolic)
        if one.vital.code in seen:
            raise DuplicateMeasurement(
                f"{one.vital.display} appears twice in one set", extra={"loinc": one.vital.code}
            )
        seen.add(one.vital.code)
        measured.append(one)
    return measured


def derive_bmi(weight_kg: float, height_cm: float) -> float | None:
    """The BMI (kg/m2, one decimal) of a weight and a height; ``None`` when it is not possible
    (the pair cannot belong to one person)."""
    if weight_kg <= 0 or height_cm <= 0:
        return None
    bmi = round(weight_kg / (height_cm / 100) ** 2, BMI.decimals)
    return bmi if BMI.low <= bmi <= BMI.high else None
