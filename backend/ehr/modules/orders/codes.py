"""The code systems each order kind takes, and the shape checks a code must pass.

Shape checks, not a terminology lookup (as for problems and allergies): they catch a mistyped
digit and a code in the wrong system before the order reaches a lab, a pharmacy or a CDS rule.

- LOINC (lab; radiology codes for imaging): ``NNNNN-C``, 1 to 7 digits, a dash and the check
  digit of LOINC's mod-10 algorithm (the Luhn scheme on the digits before the dash).
- SNOMED CT (imaging procedures, body sites, specialties, routes, reasons): concept id shape,
  partition and Verhoeff check digit (``clinical_record``).
- CPT (imaging): five digits, or four and a category letter (F, T, U).
- RxNorm (medications): an RXCUI, 1 to 8 digits without a leading zero.
- ICD-10-CM (reasons): the grammar problems use.
- UCUM units of a dose or a dispensed quantity: the units a dose is written in (mass, volume,
  international units, amount and the tablet/capsule-style annotations); anything else is
  refused rather than guessed.
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
    "CPT_SYSTEM",
    "DOSE_UNITS",
    "ICD10CM_SYSTEM",
    "LOINC_SYSTEM",
    "RXNORM_SYSTEM",
    "SNOMED_SYSTEM",
    "UCUM_SYSTEM",
    "UnitNotAllowed",
    "check_code",
    "check_dose_unit",
    "is_cpt_code",
    "is_loinc_code",
    "is_rxnorm_code",
    "loinc_check_digit",
]

LOINC_SYSTEM: Final = "http://loinc.org"
CPT_SYSTEM: Final = "http://www.ama-assn.org/go/cpt"
RXNORM_SYSTEM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM_SYSTEM: Final = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM_SYSTEM: Final = "http://unitsofmeasure.org"

_LOINC: Final = re.compile(r"^([0-9]{1,7})-([0-9])$")
_CPT: Final = re.compile(r"^([0-9]{5}|[0-9]{4}[FTU])$")
_RXCUI: Final = re.compile(r"^[1-9][0-9]{0,7}$")
_ICD10CM: Final = re.compile(r"^([A-TV-Z][0-9][0-9AB]|U0[0-9])(\.[0-9A-TV-Z]{1,4})?$")

# UCUM codes a dose or a dispensed quantity is written in. Annotations ({tbl}) are UCUM's
# dimensionless units with a label; [iU] and U are international / enzyme units.
DOSE_UNITS: Final = frozenset(
    {
        "g",
        "mg",
        "ug",
        "ng",
        "kg",
        "mg/kg",
        "ug/kg",
        "L",
        "mL",
        "uL",
        "mmol",
        "umol",
        "meq",
        "mol",
        "[iU]",
        "[IU]",
        "U",
        "10*3.[iU]",
        "10*6.[iU]",
        "[drp]",
        "%",
        "1",
        "{tbl}",
        "{tablet}",
        "{cap}",
        "{capsule}",
        "{puff}",
        "{patch}",
        "{supp}",
        "{spray}",
        "{vial}",
        "{ampule}",
        "{dose}",
        "{application}",
    }
)


class UnitNotAllowed(InvalidCode):
    """A dose or quantity unit that is not a UCUM unit a dose is written in."""

    code = "unit_not_allowed"
    title = "Unit not allowed"


def loinc_check_digit(number: str) -> int:
    """LOINC's mod-10 check digit of the digits before the dash (the Luhn scheme: from the
    right, every other digit doubled, starting with the rightmost)."""
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            digit = digit - 9 if digit > 9 else digit
        total += digit
    return (10 - total % 10) % 10


def is_loinc_code(code: str) -> bool:
    """A LOINC code: ``NNNNN-C`` with the right check digit."""
    match = _LOINC.match(code)
    return match is not None and loinc_check_digit(match.group(1)) == int(match.group(2))


def is_cpt_code(code: str) -> bool:
    """A CPT code: five digits, or four digits and F/T/U (category II / III, PLA)."""
    return bool(_CPT.match(code))


def is_rxnorm_code(code: str) -> bool:
    """An RxNorm concept id (RXCUI)."""
    return bool(_RXCUI.match(code))


_CHECKS: Final = {
    LOINC_SYSTEM: (is_loinc_code, "a LOINC code (digits, dash, check digit; e.g. 2823-3)"),
    SNOMED_SYSTEM: (is_snomed_ct_concept, "a SNOMED CT concept id (digits, check digit)"),
    CPT_SYSTEM: (is_cpt_code, "a CPT code (five characters, e.g. 71046)"),
    RXNORM_SYSTEM: (is_rxnorm_code, "an RxNorm RXCUI (digits)"),
    ICD10CM_SYSTEM: (lambda c: bool(_ICD10CM.match(c)), "an ICD-10-CM code (e.g. E11.9)"),
}

_SYSTEM_NAMES: Final = {
    LOINC_SYSTEM: "LOINC",
    SNOMED_SYSTEM: "SNOMED CT",
    CPT_SYSTEM: "CPT",
    RXNORM_SYSTEM: "RxNorm",
    ICD10CM_SYSTEM: "ICD-10-CM",
}


def check_code(field: str, system: str, code: str, allowed: frozenset[str]) -> None:
    """Raise :class:`UnknownCodeSystem` unless ``system`` is one of ``allowed`` and
    :class:`InvalidCode` unless ``code`` has that system's shape (``field`` names the place)."""
    if system not in allowed:
        names = ", ".join(sorted(_SYSTEM_NAMES.get(s, s) for s in allowed))
        raise UnknownCodeSystem(
            f"The {field} is coded in {names}.",
            extra={"field": field, "allowed_systems": sorted(allowed)},
        )
    check, shape = _CHECKS[system]
    if not check(code):
        raise InvalidCode(f"The {field} is not {shape}.", extra={"field": field})


def check_dose_unit(field: str, unit: str) -> None:
    """:class:`UnitNotAllowed` unless ``unit`` is a UCUM unit a dose is written in."""
    if unit not in DOSE_UNITS:
        raise UnitNotAllowed(
            f"The {field} unit {unit!r} is not a UCUM dose unit (mg, mL, [iU], {{tbl}} ...).",
            extra={"field": field, "unit": unit},
        )
