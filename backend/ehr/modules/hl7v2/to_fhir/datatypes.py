"""v2 datatypes as FHIR datatypes, after the IG's datatype maps (CX[Identifier],
XPN[HumanName], XAD[Address], XTN[ContactPoint], CWE/CE/CNE[CodeableConcept], XCN[Practitioner],
PL[Location], EI[Identifier], CWE[Quantity]).

Code systems: a v2 coding system name becomes its FHIR URI (``LN`` -> ``http://loinc.org``,
``HL70203`` -> ``http://terminology.hl7.org/CodeSystem/v2-0203``…); a coding without a system
in a field bound to an HL7 table takes that table; a local system (``L``, ``99zzz``, any name
we do not know) becomes ``urn:ehr:hl7v2:<sender>:codesystem:<name>`` so that two senders' local
codes never collide.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from ehr.modules.hl7v2.parsing import Repetition
from ehr.modules.hl7v2.to_fhir.assembly import Assembly, Resource
from ehr.modules.hl7v2.to_fhir.fields import component, component_text
from ehr.modules.hl7v2.to_fhir.identifiers import identifier_system
from ehr.modules.hl7v2.to_fhir.vocabulary import (
    ADDRESS_TYPE,
    ADDRESS_USE,
    IDENTIFIER_TYPE,
    NAME_TYPE,
    TABLE_CODES,
    TELECOM_EQUIPMENT,
    TELECOM_USE,
    ConceptMap,
    MappedCode,
)

__all__ = [
    "UCUM",
    "V2_0203",
    "address",
    "code_system",
    "codeable_concept",
    "coding_of",
    "contact_point",
    "human_name",
    "identifier_from_cx",
    "identifier_from_ei",
    "identifier_type",
    "location_reference",
    "mapped",
    "normalise_code",
    "number",
    "practitioner_reference",
    "quantity",
]

UCUM: Final = "http://unitsofmeasure.org"
V2_0203: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"

CODE_SYSTEMS: Final[dict[str, str]] = {
    "LN": "http://loinc.org",
    "LOINC": "http://loinc.org",
    "SCT": "http://snomed.info/sct",
    "SNM": "http://snomed.info/sct",
    "SNM3": "http://snomed.info/sct",
    "SNOMED": "http://snomed.info/sct",
    "SNOMEDCT": "http://snomed.info/sct",
    "I10": "http://hl7.org/fhir/sid/icd-10",
    "ICD10": "http://hl7.org/fhir/sid/icd-10",
    "I10C": "http://hl7.org/fhir/sid/icd-10-cm",
    "ICD10CM": "http://hl7.org/fhir/sid/icd-10-cm",
    "I10P": "http://www.cms.gov/Medicare/Coding/ICD10",
    "I9": "http://hl7.org/fhir/sid/icd-9-cm",
    "I9C": "http://hl7.org/fhir/sid/icd-9-cm",
    "I9CDX": "http://hl7.org/fhir/sid/icd-9-cm",
    "CVX": "http://hl7.org/fhir/sid/cvx",
    "MVX": "http://hl7.org/fhir/sid/mvx",
    "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "RXN": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "UCUM": UCUM,
    "NDC": "http://hl7.org/fhir/sid/ndc",
    "C4": "http://www.ama-assn.org/go/cpt",
    "CPT": "http://www.ama-assn.org/go/cpt",
    "CPT4": "http://www.ama-assn.org/go/cpt",
    "HCPCS": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    "HPC": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    "CDCREC": "urn:oid:2.16.840.1.113883.6.238",
    "NUCC": "http://nucc.org/provider-taxonomy",
    "ISO3166": "urn:iso:std:iso:3166",
    "ISO3166_1": "urn:iso:std:iso:3166",
    "NPI": "http://hl7.org/fhir/sid/us-npi",
    # HL7 table 0396 names CDC immunization guides use (RXR-1 route, OBX value sets).
    "NCIT": "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl",
    "CDCPHINVS": "urn:oid:2.16.840.1.114222.4.5.274",
}

# v2-0203 codes the IG assigns (PLAC, FILL…) that its IdentifierType sheet does not list.
_ASSIGNED_TYPES: Final[dict[str, str]] = {
    "PLAC": "Placer Identifier",
    "FILL": "Filler Identifier",
    "VN": "Visit number",
}
# Types the IG assigns whose code the terminology server's v2-0203 does not have (HAPI:
# "Unknown code v2-0203#PGN"): written as text, which validates everywhere.
_TEXT_TYPES: Final[dict[str, str]] = {"PGN": "Placer Group Number"}

_HL7_TABLE: Final = re.compile(r"^HL7(\d{4})$", re.IGNORECASE)
_NUMBER: Final = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")

# Unit spellings senders use without naming a coding system, and their UCUM code. Only
# unambiguous spellings; anything else stays a unit text without a system.
_UCUM_SPELLINGS: Final[dict[str, str]] = {
    "%": "%",
    "mg/dl": "mg/dL",
    "g/dl": "g/dL",
    "ug/dl": "ug/dL",
    "ng/dl": "ng/dL",
    "mg/l": "mg/L",
    "g/l": "g/L",
    "ug/l": "ug/L",
    "ng/ml": "ng/mL",
    "pg/ml": "pg/mL",
    "ug/ml": "ug/mL",
    "mmol/l": "mmol/L",
    "umol/l": "umol/L",
    "nmol/l": "nmol/L",
    "pmol/l": "pmol/L",
    "mol/l": "mol/L",
    "meq/l": "meq/L",
    "mosm/kg": "mosm/kg",
    "u/l": "U/L",
    "iu/l": "[IU]/L",
    "miu/ml": "m[IU]/mL",
    "uiu/ml": "u[IU]/mL",
    "fl": "fL",
    "pg": "pg",
    "mm/h": "mm/h",
    "mm/hr": "mm/h",
    "k/ul": "10*3/uL",
    "10*3/ul": "10*3/uL",
    "10^3/ul": "10*3/uL",
    "x10e3/ul": "10*3/uL",
    "10*6/ul": "10*6/uL",
    "10^6/ul": "10*6/uL",
    "x10e6/ul": "10*6/uL",
    "10*9/l": "10*9/L",
    "10^9/l": "10*9/L",
    "10*12/l": "10*12/L",
    "10^12/l": "10*12/L",
    "mmhg": "mm[Hg]",
    "mm[hg]": "mm[Hg]",
    "kg": "kg",
    "g": "g",
    "mg": "mg",
    "ug": "ug",
    "mcg": "ug",
    "cm": "cm",
    "mm": "mm",
    "ml": "mL",
    "l": "L",
    "s": "s",
    "sec": "s",
    "min": "min",
    "h": "h",
    "hr": "h",
    "/min": "/min",
    "bpm": "/min",
    "cel": "Cel",
    "degc": "Cel",
    "[degf]": "[degF]",
    "degf": "[degF]",
    "kg/m2": "kg/m2",
    "ml/min": "mL/min",
    "ml/min/1.73m2": "mL/min/{1.73_m2}",
    "ml/min/{1.73_m2}": "mL/min/{1.73_m2}",
}


def normalise_code(code: str) -> str:
    """A FHIR ``code``: no leading/trailing whitespace, single inner spaces."""
    return " ".join(code.split())


def code_system(name: str, assembly: Assembly, code: str | None = None) -> str | None:
    """The FHIR URI of a v2 coding system name (CWE.3/6/12): HL7 tables and the known external
    systems by their registered URI, a URI as itself, anything else as a sender-local system;
    None when the name is empty.

    With ``code``: an HL7 table whose codes the IG lists (:data:`TABLE_CODES`) keeps its HL7
    URI only for one of those codes. Senders name ``HL70131``, ``HL70277``… over values of
    their own (user-defined tables, or the wrong table): such a code is the sender's, in its
    local version of the table — under the HL7 URI it is an unknown code, an error for FHIR
    validation."""
    name = name.strip()
    if not name:
        return None
    table_match = _HL7_TABLE.match(name)
    if table_match:
        table = table_match.group(1)
        table_codes = TABLE_CODES.get(table)
        if code is not None and table_codes is not None and code not in table_codes:
            return assembly.local_code_system(f"HL7{table}")
        return f"http://terminology.hl7.org/CodeSystem/v2-{table}"
    known = CODE_SYSTEMS.get(name.upper().replace("-", ""))
    if known:
        return known
    if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$", name):
        return name  # a sender that already writes URIs (urn:oid:…, http://…)
    return assembly.local_code_system(name)


def _table_system(
    code: str, assembly: Assembly, table: str | None, concept_map: ConceptMap | None
) -> str | None:
    # A code sent without a coding system in a field bound to an HL7 table: the HL7 table when
    # the code is one of the table's (as far as the IG's ConceptMap sheet lists them: mapped,
    # or listed without a FHIR target like DG1-6 ``W``/``F``), else the
    # sender's local version of that table — senders put their own values in these fields, and
    # an unknown code under the HL7 system would not validate.
    if table is None:
        return None
    if concept_map is not None and (
        mapped(code, concept_map) is not None or code in TABLE_CODES.get(table, ())
    ):
        return f"http://terminology.hl7.org/CodeSystem/v2-{table}"
    return assembly.local_code_system(f"HL7{table}")


def _coding(
    rep: Repetition,
    positions: tuple[int, int, int, int],
    assembly: Assembly,
    table: str | None,
    concept_map: ConceptMap | None,
) -> Resource | None:
    code_at, display_at, system_at, version_at = positions
    code = normalise_code(component_text(rep, code_at))
    if not code:
        return None
    system_name = component(rep, system_at)
    system = (
        code_system(system_name, assembly, code)
        if system_name
        else _table_system(code, assembly, table, concept_map)
    )
    return {
        "system": system,
        "version": component(rep, version_at),
        "code": code,
        "display": component_text(rep, display_at),
    }


def mapped(code: str, concept_map: ConceptMap) -> MappedCode | None:
    """The IG ConceptMap's target of a v2 code (exact, then case-insensitive), or None."""
    code = code.strip()
    if not code:
        return None
    found = concept_map.get(code)
    if found is None:  # case-insensitive, and the IG sheet's "< " / "> " keys
        found = next(
            (
                target
                for source, target in concept_map.items()
                if source.strip().upper() == code.upper()
            ),
            None,
        )
    return found


def coding_of(target: MappedCode) -> Resource:
    return {"system": target.system, "code": target.code, "display": target.display}


def codeable_concept(
    rep: Repetition | None,
    assembly: Assembly,
    *,
    table: str | None = None,
    concept_map: ConceptMap | None = None,
) -> Resource | None:
    """CWE/CE/CNE/IS/ID -> CodeableConcept (IG CWE[CodeableConcept]): codings from the
    identifier/text/system triplets 1-3, 4-6 and 10-12 (versions 7, 8, 13), text from CWE.9,
    else the text of a triplet without code. With ``concept_map`` the IG's FHIR code comes first
    and the original v2 coding stays beside it. ``table`` (``"0002"``) is the HL7 table the
    field is bound to, for a first coding sent without a coding system."""
    if rep is None:
        return None
    codings: list[Resource] = []
    if concept_map is not None:
        target = mapped(component_text(rep, 1), concept_map)
        if target is not None:
            codings.append(coding_of(target))
    for positions in ((1, 2, 3, 7), (4, 5, 6, 8), (10, 11, 12, 13)):
        first = positions[0] == 1
        coding = _coding(
            rep, positions, assembly, table if first else None, concept_map if first else None
        )
        if coding is not None and not any(
            c.get("system") == coding["system"] and c.get("code") == coding["code"] for c in codings
        ):
            codings.append(coding)
    text = component_text(rep, 9)
    if not text and not component_text(rep, 1):
        text = component_text(rep, 2) or component_text(rep, 5)
    if not codings and not text:
        return None
    return {"coding": codings, "text": text}


def identifier_type(code: str) -> Resource | None:
    """Identifier.type from a v2-0203 code (CX.5, XCN.13); an unknown code stays as text."""
    code = normalise_code(code)
    if not code:
        return None
    target = mapped(code, IDENTIFIER_TYPE)
    if target is not None:
        return {"coding": [coding_of(target)]}
    if code.upper() in _ASSIGNED_TYPES:
        upper = code.upper()
        return {"coding": [{"system": V2_0203, "code": upper, "display": _ASSIGNED_TYPES[upper]}]}
    if code.upper() in _TEXT_TYPES:
        return {"text": _TEXT_TYPES[code.upper()]}
    return {"text": code}


def identifier_from_cx(rep: Repetition, assembly: Assembly, location: str) -> Resource | None:
    """CX -> Identifier (IG CX[Identifier]); system from CX.4, else the sender's."""
    identifier_value = component_text(rep, 1)
    if not identifier_value:
        return None
    system = identifier_system(
        component(rep, 4, 1), component(rep, 4, 2), component(rep, 4, 3)
    ) or assembly.default_system(location)
    return {
        "type": identifier_type(component(rep, 5)),
        "system": system,
        "value": identifier_value,
        "period": {
            "start": assembly.date(component(rep, 7), location, strict=False),
            "end": assembly.date(component(rep, 8), location, strict=False),
        },
    }


def identifier_from_ei(
    rep: Repetition | None,
    assembly: Assembly,
    location: str,
    *,
    type_code: str | None = None,
    start: int = 1,
) -> Resource | None:
    """EI (or the EI inside an EIP/CX at ``start``) -> Identifier: system from EI.2-4, else the
    sender's; ``type_code`` (``PLAC``, ``FILL``…) as Identifier.type."""
    if rep is None:
        return None
    identifier_value = component_text(rep, start)
    if not identifier_value:
        return None
    authority = rep.component(start + 1)
    if len(authority) > 1 and not component(rep, start + 2) and not component(rep, start + 3):
        # A sender that writes the assigning authority as one HD (``id^NS&1.2.3&ISO``)
        hd = (
            component(rep, start + 1, 1),
            component(rep, start + 1, 2),
            component(rep, start + 1, 3),
        )
    else:
        hd = (component(rep, start + 1), component(rep, start + 2), component(rep, start + 3))
    system = identifier_system(*hd) or assembly.default_system(location)
    return {
        "type": identifier_type(type_code) if type_code else None,
        "system": system,
        "value": identifier_value,
    }


def _given_names(*names: str) -> list[str]:
    return [name for name in names if name]


def human_name(rep: Repetition, assembly: Assembly, location: str) -> Resource | None:
    """XPN -> HumanName (IG XPN[HumanName]); use from XPN.7 through the NameType map."""
    family = component(rep, 1, 1)
    given = _given_names(component_text(rep, 2), component_text(rep, 3))
    if not family and not given:
        return None
    use = mapped(component(rep, 7), NAME_TYPE)
    return {
        "use": use.code if use else None,
        "family": family,
        "given": given,
        "prefix": _given_names(component_text(rep, 5)),
        "suffix": _given_names(
            component_text(rep, 4), component_text(rep, 6), component_text(rep, 14)
        ),
        "period": {
            "start": assembly.date_time(component(rep, 12), location, strict=False),
            "end": assembly.date_time(component(rep, 13), location, strict=False),
        },
    }


def address(rep: Repetition, assembly: Assembly, location: str) -> Resource | None:
    """XAD -> Address (IG XAD[Address]); XAD.7 to use or type through the AddressType maps."""
    street = component(rep, 1, 1) or " ".join(
        part for part in (component(rep, 1, 3), component(rep, 1, 2)) if part
    )
    address_type = component(rep, 7)
    use = mapped(address_type, ADDRESS_USE)
    kind = mapped(address_type, ADDRESS_TYPE)
    result: Resource = {
        "use": use.code if use else None,
        "type": kind.code if kind else None,
        "line": _given_names(street, component_text(rep, 2), component_text(rep, 19)),
        "city": component_text(rep, 3),
        "district": component_text(rep, 9),
        "state": component_text(rep, 4),
        "postalCode": component_text(rep, 5),
        "country": component_text(rep, 6),
        "period": {
            "start": assembly.date_time(component(rep, 13), location, strict=False),
            "end": assembly.date_time(component(rep, 14), location, strict=False),
        },
    }
    if not any(
        result[key] for key in ("line", "city", "district", "state", "postalCode", "country")
    ):
        return None
    return result


def contact_point(
    rep: Repetition, assembly: Assembly, location: str, *, default_use: str | None = None
) -> Resource | None:
    """XTN -> ContactPoint (IG XTN[ContactPoint]). The value is XTN.4 for Internet/X.400,
    else XTN.12 (unformatted), else XTN.1, else composed from XTN.5-8; the system from XTN.3
    (``CP`` is a phone whose use is mobile), email when only XTN.4 is valued, phone when a
    2.3-style number comes without equipment type."""
    equipment = component(rep, 3)
    use_code = component(rep, 2).upper()
    email = equipment.upper() in {"INTERNET", "X.400"} or (
        not equipment and (use_code == "NET" or (bool(component(rep, 4)) and not component(rep, 1)))
    )
    if email:
        contact_value = component_text(rep, 4) or component_text(rep, 1)
        system = "email"
    else:
        contact_value = component_text(rep, 12) or component_text(rep, 1)
        if not contact_value and component(rep, 7):
            country, area, local, extension = (component(rep, n) for n in (5, 6, 7, 8))
            contact_value = " ".join(
                part for part in (f"+{country}" if country else "", area, local) if part
            ) + (f" X{extension}" if extension else "")
        target = mapped(equipment, TELECOM_EQUIPMENT)
        system = "phone" if target is None or target.code == "mobile" else target.code
    if not contact_value:
        return None
    use = mapped(use_code, TELECOM_USE)
    use_value = use.code if use else (None if use_code else default_use)
    if equipment.upper() == "CP":
        use_value = "mobile"
    rank = component(rep, 18)
    return {
        "system": system,
        "value": contact_value,
        "use": use_value,
        "rank": int(rank) if rank.isdigit() and int(rank) > 0 else None,
        "period": {
            "start": assembly.date_time(component(rep, 13), location, strict=False),
            "end": assembly.date_time(component(rep, 14), location, strict=False),
        },
    }


def number(raw: str) -> int | float | None:
    """A v2 NM as a JSON number, or None when it is not one."""
    raw = raw.strip()
    if not _NUMBER.match(raw):
        return None
    return float(raw) if "." in raw else int(raw)


def quantity(amount: int | float, unit: Repetition | None, assembly: Assembly) -> Resource:
    """A value with its OBX-6/RXA-7 unit (IG CWE[Quantity]): UCUM when the unit's coding system
    is UCUM or when an unmarked unit is one of the common unambiguous spellings of a UCUM unit;
    otherwise the unit text alone."""
    result: Resource = {"value": amount}
    if unit is None:
        return result
    code, text, system = component_text(unit, 1), component_text(unit, 2), component(unit, 3)
    result["unit"] = text or code
    if code and system.upper() == "UCUM":
        result.update(system=UCUM, code=normalise_code(code), unit=text or code)
    elif code and not system and code.lower() in _UCUM_SPELLINGS:
        result.update(system=UCUM, code=_UCUM_SPELLINGS[code.lower()], unit=code)
    return result


def _display(parts: Iterable[str]) -> str:
    return " ".join(part for part in parts if part)


def practitioner_reference(
    rep: Repetition | None, assembly: Assembly, location: str
) -> Resource | None:
    """XCN (CN in 2.3) -> Reference(Practitioner) (IG XCN[Practitioner]): with an id (XCN.1)
    a Practitioner keyed on its identifier (system from XCN.9, else the sender's); with only a
    name, a Reference with a display.

    The Practitioner is a conditional *create*: clinical messages name practitioners, they are
    not the provider directory — a lab's ``^PRIMARY^PATRICIA P`` must not overwrite what the
    directory (or an NPI-keyed record shared by every sender) holds."""
    if rep is None:
        return None
    identifier_value = component_text(rep, 1)
    family = component(rep, 2, 1)
    given = _given_names(component_text(rep, 3), component_text(rep, 4))
    prefix = _given_names(component_text(rep, 6))
    suffix = _given_names(component_text(rep, 5), component_text(rep, 21))
    display = _display([*prefix, *given, family, *suffix])
    if not identifier_value:
        return {"display": display} if display else None
    system = identifier_system(
        component(rep, 9, 1), component(rep, 9, 2), component(rep, 9, 3)
    ) or assembly.default_system(location)
    use = mapped(component(rep, 10), NAME_TYPE)
    degree = normalise_code(component(rep, 7))
    practitioner: Resource = {
        "identifier": [
            {
                "type": identifier_type(component(rep, 13)),
                "system": system,
                "value": identifier_value,
            }
        ],
        "name": [
            {
                "use": use.code if use else None,
                "family": family,
                "given": given,
                "prefix": prefix,
                "suffix": suffix,
            }
        ]
        if family or given
        else [],
        "qualification": [
            {
                "code": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0360", "code": degree}
                    ]
                }
            }
        ]
        if degree
        else [],
    }
    full_url = assembly.put(
        "Practitioner",
        {"system": system, "value": identifier_value},
        practitioner,
        location=location,
        on_duplicate="reuse",
        method="POST",
    )
    return {"reference": full_url, "display": display}


_LOCATION_LEVELS: Final = (
    (1, None),  # point of care
    (2, "ro"),  # room
    (3, "bd"),  # bed
)


def location_reference(
    rep: Repetition | None, assembly: Assembly, location: str
) -> Resource | None:
    """PL -> Reference(Location) (IG PL[Location]): one Location per level valued among point of
    care (PL.1), room (PL.2) and bed (PL.3), each ``partOf`` the level above, keyed on the path
    (``4N``, ``4N^401``, ``4N^401^A``) in the system of the facility PL.4 (else the sender's).
    Returns a reference to the most specific level. Like practitioners, locations are reference
    data: written as conditional creates, never overwritten by a message."""
    if rep is None:
        return None
    system = identifier_system(
        component(rep, 4, 1), component(rep, 4, 2), component(rep, 4, 3)
    ) or assembly.default_system(location)
    path: list[str] = []
    parent: Resource | None = None
    display = ""
    for position, physical in _LOCATION_LEVELS:
        name = component(rep, position, 1)
        path.append(name)
        if not name:
            continue
        key = "^".join(path).rstrip("^")
        resource: Resource = {
            "identifier": [{"system": system, "value": key}],
            "status": "active",
            "name": name,
            "mode": "instance",
            "physicalType": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
                        "code": physical,
                    }
                ]
            }
            if physical
            else None,
            "partOf": parent,
        }
        full_url = assembly.put(
            "Location",
            {"system": system, "value": key},
            resource,
            location=location,
            on_duplicate="reuse",
            method="POST",
        )
        display = key
        parent = {"reference": full_url}
    if parent is None:
        return None
    description = component_text(rep, 9)
    if description:
        target = assembly.resource_of(str(parent["reference"]))
        if target is not None and not target.get("description"):
            target["description"] = description
    return {**parent, "display": display}
