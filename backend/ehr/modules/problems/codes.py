"""The code systems a problem may be coded in, and the checks a code must pass.

A problem is coded in ICD-10-CM (billing, registries) or SNOMED CT (clinical terminology); any
other system is refused (``unknown_code_system``) so the problem list stays searchable and the
CDS rules that read it (care gaps, medication safety) recognise what they see. The checks are
shape checks, not a terminology lookup: ICD-10-CM's grammar (a letter other than U, a digit, a
digit or A/B, or U00-U09; then up to four characters after the dot) and SNOMED CT's identifier
rules (6 to 18 digits, partition "concept", Verhoeff check digit), which catch a mistyped digit.
The refusals and the SNOMED CT check are the clinical record's (every chart kind shares them);
the ICD-10-CM grammar and which systems a problem takes are the problem list's own.
"""

from __future__ import annotations

import re
from typing import Final

from ehr.modules.clinical_record import (
    SNOMED_SYSTEM,
    InvalidCode,
    UnknownCodeSystem,
    is_snomed_ct_concept,
)

__all__ = [
    "ICD10CM_SYSTEM",
    "PROBLEM_CODE_SYSTEMS",
    "SNOMED_SYSTEM",
    "InvalidCode",
    "UnknownCodeSystem",
    "check_problem_code",
    "is_icd10cm_code",
    "is_snomed_ct_concept",
]

ICD10CM_SYSTEM: Final = "http://hl7.org/fhir/sid/icd-10-cm"
PROBLEM_CODE_SYSTEMS: Final = frozenset({ICD10CM_SYSTEM, SNOMED_SYSTEM})

# U is reserved for special purposes; ICD-10-CM uses U00-U09 (U07.1 COVID-19, U09.9 post-COVID).
_ICD10CM: Final = re.compile(r"^([A-TV-Z][0-9][0-9AB]|U0[0-9])(\.[0-9A-TV-Z]{1,4})?$")


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
