"""The code systems care-gap knowledge is written in, and the checks a listed code must pass.

Codes are listed per code system (``cvx``, ``loinc``, ``snomed``, ``cpt``, ``hcpcs``, ``icd10cm``)
and checked for shape; LOINC codes must pass the LOINC (mod 10) check digit and SNOMED CT
identifiers the Verhoeff check digit (``clinical_record.is_snomed_ct_concept``, the check problems
and allergies use), so a mistyped digit is refused. Which FHIR resource a code is
looked for in follows from its system (:data:`EVIDENCE_RESOURCE`): CVX in
``Immunization.vaccineCode``, LOINC in ``Observation.code``, SNOMED CT / CPT / HCPCS in
``Procedure.code``; condition sets and condition exclusions use SNOMED CT and ICD-10-CM in
``Condition.code``. :class:`CodeList` is a list of codes as the knowledge file gives it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ehr.modules import clinical_record

__all__ = [
    "CODE_SYSTEM_ALIASES",
    "CODE_SYSTEM_URIS",
    "EVIDENCE_RESOURCE",
    "CodeList",
    "CodeSystem",
    "CptCode",
    "CvxCode",
    "EvidenceResource",
    "HcpcsCode",
    "Icd10Code",
    "Icd10Prefix",
    "LoincCode",
    "SnomedCode",
    "is_valid_code",
    "loinc_check_digit_ok",
]

CodeSystem = Literal["cvx", "loinc", "snomed", "cpt", "hcpcs", "icd10cm"]
EvidenceResource = Literal["Immunization", "Observation", "Procedure"]

CODE_SYSTEM_URIS: Final[Mapping[CodeSystem, str]] = {
    "cvx": "http://hl7.org/fhir/sid/cvx",
    "loinc": "http://loinc.org",
    "snomed": "http://snomed.info/sct",
    "cpt": "http://www.ama-assn.org/go/cpt",
    "hcpcs": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    "icd10cm": "http://hl7.org/fhir/sid/icd-10-cm",
}

# Every system URI accepted in a record's coding (the canonical URI and the HL7 OID form).
CODE_SYSTEM_ALIASES: Final[Mapping[str, CodeSystem]] = {
    **{uri: name for name, uri in CODE_SYSTEM_URIS.items()},
    "urn:oid:2.16.840.1.113883.12.292": "cvx",
    "urn:oid:2.16.840.1.113883.6.1": "loinc",
    "urn:oid:2.16.840.1.113883.6.96": "snomed",
    "urn:oid:2.16.840.1.113883.6.12": "cpt",
    "urn:oid:2.16.840.1.113883.6.285": "hcpcs",
    "urn:oid:2.16.840.1.113883.6.90": "icd10cm",
}

# Where evidence coded in a system is looked for.
EVIDENCE_RESOURCE: Final[Mapping[CodeSystem, EvidenceResource]] = {
    "cvx": "Immunization",
    "loinc": "Observation",
    "snomed": "Procedure",
    "cpt": "Procedure",
    "hcpcs": "Procedure",
}

_CODE_SHAPES: Final[Mapping[CodeSystem, re.Pattern[str]]] = {
    "cvx": re.compile(r"^[0-9]{1,3}$"),
    "loinc": re.compile(r"^[0-9]{1,7}-[0-9]$"),
    "snomed": re.compile(r"^[1-9][0-9]{5,17}$"),
    "cpt": re.compile(r"^[0-9]{4}[0-9FTU]$"),
    "hcpcs": re.compile(r"^[A-V][0-9]{4}$"),
    "icd10cm": re.compile(r"^[A-TV-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$"),
}

# --------------------------------------------------------------------------- check digits


def loinc_check_digit_ok(code: str) -> bool:
    """LOINC's mod 10 check digit (the digit after the hyphen)."""
    body, _, check = code.partition("-")
    total = 0
    for position, char in enumerate(reversed(body)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            value = value // 10 + value % 10
        total += value
    return (10 - total % 10) % 10 == int(check)


def is_valid_code(system: CodeSystem, code: str) -> bool:
    """Shape (and check digit where the system has one) of ``code`` in ``system``."""
    if not _CODE_SHAPES[system].match(code):
        return False
    if system == "loinc":
        return loinc_check_digit_ok(code)
    if system == "snomed":
        # The one SNOMED CT check of the chart: concept partition (00/10), Verhoeff digit.
        return clinical_record.is_snomed_ct_concept(code)
    return True


def _checked(system: CodeSystem) -> AfterValidator:
    def check(code: str) -> str:
        if not is_valid_code(system, code):
            raise ValueError(f"{code!r} is not a valid {system} concept code")
        return code

    return AfterValidator(check)


CvxCode = Annotated[str, _checked("cvx")]
LoincCode = Annotated[str, _checked("loinc")]
SnomedCode = Annotated[str, _checked("snomed")]
CptCode = Annotated[str, _checked("cpt")]
HcpcsCode = Annotated[str, _checked("hcpcs")]
Icd10Code = Annotated[str, _checked("icd10cm")]
Icd10Prefix = Annotated[str, Field(pattern=r"^[A-TV-Z][0-9][0-9A-Z]?(\.[0-9A-Z]{1,3})?$")]


class CodeList(BaseModel):
    """Codes per system; which systems are allowed depends on where the list is used."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cvx: tuple[CvxCode, ...] = ()
    loinc: tuple[LoincCode, ...] = ()
    snomed: tuple[SnomedCode, ...] = ()
    cpt: tuple[CptCode, ...] = ()
    hcpcs: tuple[HcpcsCode, ...] = ()
    icd10cm: tuple[Icd10Code, ...] = Field(default=(), description="Exact codes (with the dot).")
    icd10cm_prefixes: tuple[Icd10Prefix, ...] = Field(
        default=(), description="A code starting with one of these matches (E11 = E11.x)."
    )

    @model_validator(mode="after")
    def _no_duplicates(self) -> CodeList:
        for system, code in self.items():
            if list(self.codes(system)).count(code) > 1:
                raise ValueError(f"{system} code {code} is listed twice")
        if len(set(self.icd10cm_prefixes)) != len(self.icd10cm_prefixes):
            raise ValueError("an ICD-10-CM prefix is listed twice")
        return self

    def codes(self, system: CodeSystem) -> tuple[str, ...]:
        result: tuple[str, ...] = getattr(self, system)
        return result

    def items(self) -> Iterator[tuple[CodeSystem, str]]:
        """Every (system, code) pair; ICD-10-CM prefixes are not codes and are left out."""
        for system in CODE_SYSTEM_URIS:
            for code in self.codes(system):
                yield system, code

    def systems(self) -> frozenset[CodeSystem]:
        used: set[CodeSystem] = {system for system, _ in self.items()}
        if self.icd10cm_prefixes:
            used.add("icd10cm")
        return frozenset(used)

    def is_empty(self) -> bool:
        return not self.systems()

    def only(self, allowed: frozenset[CodeSystem], where: str) -> None:
        extra = self.systems() - allowed
        if extra:
            raise ValueError(f"{where}: code systems {sorted(extra)} are not allowed here")
