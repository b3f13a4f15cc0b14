"""The vital signs we record: LOINC code, canonical UCUM unit, the physiologically possible range.

The codes and canonical units are those of the FHIR R4 vital-signs profiles
(http://hl7.org/fhir/R4/observation-vitalsigns.html). A value outside its range cannot be a real
measurement of a living patient (a typo, a wrong unit): it is refused, never stored. The ranges are
wide on purpose (they bound what is possible, not what is normal) and apply to the value once
converted to the canonical unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "BLOOD_PRESSURE",
    "BMI",
    "BODY_HEIGHT",
    "BODY_WEIGHT",
    "DIASTOLIC",
    "LOINC_SYSTEM",
    "SYSTOLIC",
    "VITALS",
    "VitalSign",
    "vital_of_code",
]

LOINC_SYSTEM: Final = "http://loinc.org"


@dataclass(frozen=True, slots=True)
class VitalSign:
    """One kind of vital sign (or a blood-pressure component)."""

    code: str
    display: str
    unit: str  # canonical UCUM code
    unit_display: str
    low: float  # possible range, in the canonical unit (inclusive)
    high: float
    decimals: int  # stored precision in the canonical unit
    # Other LOINC codes naming the same measurement (stored as extra codings).
    aliases: tuple[str, ...] = ()


BLOOD_PRESSURE: Final = VitalSign(
    "85354-9", "Blood pressure panel with all children optional", "mm[Hg]", "mmHg", 20, 300, 0
)
SYSTOLIC: Final = VitalSign("8480-6", "Systolic blood pressure", "mm[Hg]", "mmHg", 40, 300, 0)
DIASTOLIC: Final = VitalSign("8462-4", "Diastolic blood pressure", "mm[Hg]", "mmHg", 20, 200, 0)
HEART_RATE: Final = VitalSign("8867-4", "Heart rate", "/min", "beats/minute", 20, 300, 0)
RESPIRATORY_RATE: Final = VitalSign(
    "9279-1", "Respiratory rate", "/min", "breaths/minute", 2, 80, 0
)
BODY_TEMPERATURE: Final = VitalSign("8310-5", "Body temperature", "Cel", "C", 25, 45, 1)
OXYGEN_SATURATION: Final = VitalSign(
    "2708-6",
    "Oxygen saturation in Arterial blood",
    "%",
    "%",
    40,
    100,
    0,
    aliases=("59408-5",),
)
BODY_WEIGHT: Final = VitalSign("29463-7", "Body weight", "kg", "kg", 0.2, 500, 2)
BODY_HEIGHT: Final = VitalSign("8302-2", "Body height", "cm", "cm", 20, 280, 1)
BMI: Final = VitalSign("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", "kg/m2", 5, 250, 1)
HEAD_CIRCUMFERENCE: Final = VitalSign(
    "9843-4", "Head Occipital-frontal circumference", "cm", "cm", 10, 80, 1
)

# The measurements a caller may submit, by LOINC code (aliases included).
VITALS: Final[dict[str, VitalSign]] = {
    vital_code: vital
    for vital in (
        BLOOD_PRESSURE,
        HEART_RATE,
        RESPIRATORY_RATE,
        BODY_TEMPERATURE,
        OXYGEN_SATURATION,
        BODY_WEIGHT,
        BODY_HEIGHT,
        BMI,
        HEAD_CIRCUMFERENCE,
    )
    for vital_code in (vital.code, *vital.aliases)
}


def vital_of_code(code: str) -> VitalSign | None:
    """The vital sign a submitted LOINC code names (``None``: not one we record)."""
    return VITALS.get(code)
