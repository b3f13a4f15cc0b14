"""The code systems a problem may be coded in, and the checks a code must pass.

A problem is coded in ICD-10-CM (billing, registries) or SNOMED CT (clinical terminology); any
other system is refused (``unknown_code_system``) so the problem list stays searchable and the
CDS rules that read it (care gaps, medication safety) recognise what they see. The checks are
shape checks, not a terminology lookup: ICD-10-CM's grammar (a letter other than U, a digit, a
digit or A/B, or U00-U09; then up to four characters after the dot) and SNOMED CT's identifier
rules (6 to 18 digits, partition "concept", Verhoeff check digit), which catch a mistyped digit.
"""

from __future__ import annotations

import re
from typing import Final

from ehr.core.errors import RequestValidationFailed

__all__ = [
    "ICD10CM_SYSTEM",
    "PROBLEM_CODE_SYSTEMS",
    "SNOMED_SYSTEM",
    "InvalidCode",
    "UnknownCodeSystem",
    "check_problem_code",
    "is_icd10cm_code",
    "is_snomed_ct_concept",
    "verhoeff_ok",
]

ICD10CM_SYSTEM: Final = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED_SYSTEM: Final = "http://snomed.info/sct"
PROBLEM_CODE_SYSTEMS: Final = frozenset({ICD10CM_SYSTEM, SNOMED_SYSTEM})

# U is reserved for special purposes; ICD-10-CM uses U00-U09 (U07.1 COVID-19, U09.9 post-COVID).
_ICD10CM: Final = re.compile(r"^([A-TV-Z][0-9][0-9AB]|U0[0-9])(\.[0-9A-TV-Z]{1,4})?$")
_SNOMED_ID: Final = re.compile(r"^[1-9][0-9]{5,17}$")

_VERHOEFF_D: Final = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P: Final = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


class UnknownCodeSystem(RequestValidationFailed):
    """The coding names a system this resource is not coded in."""

    code = "unknown_code_system"
    title = "Unknown code system"


class InvalidCode(RequestValidationFailed):
    """The code does not have the shape (or check digit) its system requires."""

    code = "invalid_code"
    title = "Invalid code"


def verhoeff_ok(digits: str) -> bool:
    """The Verhoeff check over ``digits`` (the last digit is the check digit)."""
    check = 0
    for position, char in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[position % 8][int(char)]]
    return check == 0


def is_snomed_ct_concept(code: str) -> bool:
    """A SNOMED CT concept id: 6 to 18 digits, partition ``00``/``10`` (concept), Verhoeff digit."""
    return bool(_SNOMED_ID.match(code)) and code[-3:-1] in ("00", "10") and verhoeff_ok(code)


def is_icd10cm_code(code: str) -> bool:
    """An ICD-10-CM code by its grammar (category, optional dot and up to four more)."""
    return bool(_ICD10CM.match(code))


def check_problem_code(system: str, code: str) -> None:
    """Raise :class:`UnknownCodeSystem` / :class:`InvalidCode` unless ``system|code`` may code a
    problem."""
    if system not in PROBLEM_CODE_SYSTEMS:
        raise UnknownCodeSystem(
            "A problem is coded in ICD-10-CM or SNOMED CT.",
            extra={"allowed_systems": sorted(PROBLEM_CODE_SYSTEMS)},
        )
    if system == ICD10CM_SYSTEM and not is_icd10cm_code(code):
        raise InvalidCode("The code is not an ICD-10-CM code (e.g. E11.9).")
    if system == SNOMED_SYSTEM and not is_snomed_ct_concept(code):
        raise InvalidCode("The code is not a SNOMED CT concept id (digits, check digit).")
