"""The codes a result is written in: LOINC (with its check digit), the v3 interpretation codes
and the task code of our own CodeSystem that marks an acknowledgement item.

LOINC codes are checked by shape and check digit (LOINC's mod-10 algorithm, the Luhn scheme on
the digits before the dash): a shape check, not a terminology lookup — it catches a mistyped
digit before a result is filed under the wrong test (and never matched by a critical rule or a
trend). The refusals are the clinical record's (one ``code`` for every chart kind).
"""

from __future__ import annotations

import re
from typing import Final

from ehr.modules.clinical_record import InvalidCode, UnknownCodeSystem

__all__ = [
    "ACKNOWLEDGE_CRITICAL",
    "CRITICAL_INTERPRETATIONS",
    "INTERPRETATION_DISPLAY",
    "INTERPRETATION_SYSTEM",
    "LABORATORY_CATEGORY",
    "LOINC_SYSTEM",
    "OBSERVATION_CATEGORY_SYSTEM",
    "REPORT_CATEGORY_SYSTEM",
    "TASK_CODE_SYSTEM",
    "check_loinc",
    "is_loinc_code",
    "loinc_check_digit",
]

LOINC_SYSTEM: Final = "http://loinc.org"
OBSERVATION_CATEGORY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
# DiagnosticReport.category: HL7 v2 table 0074 (diagnostic service section), LAB.
REPORT_CATEGORY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v2-0074"
LABORATORY_CATEGORY: Final = "laboratory"
INTERPRETATION_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
# Our own CodeSystem of task codes (FHIR's task-code set has no "acknowledge a result").
TASK_CODE_SYSTEM: Final = "urn:ehr:task-code"
ACKNOWLEDGE_CRITICAL: Final = "acknowledge-critical-result"

# v3-ObservationInterpretation codes this module writes, with their displays.
INTERPRETATION_DISPLAY: Final = {
    "N": "Normal",
    "L": "Low",
    "H": "High",
    "LL": "Critical low",
    "HH": "Critical high",
    "A": "Abnormal",
    "AA": "Critical abnormal",
}
CRITICAL_INTERPRETATIONS: Final = frozenset({"LL", "HH", "AA"})

_LOINC: Final = re.compile(r"^([0-9]{1,7})-([0-9])$")


def loinc_check_digit(digits: str) -> int:
    """LOINC's mod-10 check digit of ``digits`` (the part before the dash)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:  # the rightmost digit and every other one are doubled
            value *= 2
            value = value - 9 if value > 9 else value
        total += value
    return (10 - total % 10) % 10


def is_loinc_code(code: str) -> bool:
    """A LOINC code: 1 to 7 digits, a dash and the right check digit (``2823-3``)."""
    match = _LOINC.match(code)
    if match is None:
        return False
    return loinc_check_digit(match.group(1)) == int(match.group(2))


def check_loinc(code: str, *, system: str = LOINC_SYSTEM, field: str = "code") -> None:
    """422 ``unknown_code_system`` / ``invalid_code`` unless ``system|code`` is a LOINC code."""
    if system != LOINC_SYSTEM:
        raise UnknownCodeSystem(
            "Results are coded in LOINC.", extra={"allowed_systems": [LOINC_SYSTEM], "field": field}
        )
    if not is_loinc_code(code):
        raise InvalidCode(
            f"{code!r} is not a LOINC code (digits, a dash, the check digit: 2823-3).",
            extra={"field": field},
        )
