"""PID/PD1 -> Patient, MRG -> the replaced Patient of a merge (IG segment maps PID[Patient],
PD1[Patient]). What a message says about the patient's people and problems (NK1, AL1, DG1) is
in :mod:`.clinical`.

The Patient is a conditional update keyed on the first usable PID-3 repetition (one with an id;
its system from CX.4, else MSH-4/MSH-3); a message that does not own the Patient (a result,
order…) finds it by any of its PID-3 identifiers. A PUT replaces the whole Patient: for an
ADT A08 (and every other message with a PID) that is intended — the registration system is the
source of truth for demographics, and an element it sends as ``""`` or leaves out is cleared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ehr.modules.hl7v2.parsing import Segment
from ehr.modules.hl7v2.to_fhir.assembly import Assembly, Resource
from ehr.modules.hl7v2.to_fhir.conversion import ConversionError
from ehr.modules.hl7v2.to_fhir.datatypes import (
    address,
    codeable_concept,
    contact_point,
    human_name,
    identifier_from_cx,
    mapped,
    practitioner_reference,
)
from ehr.modules.hl7v2.to_fhir.datetimes import parse_dtm
from ehr.modules.hl7v2.to_fhir.fields import (
    component,
    component_text,
    location_of,
    repetitions,
    value,
)
from ehr.modules.hl7v2.to_fhir.vocabulary import ADMINISTRATIVE_SEX, MARITAL_STATUS, YES_NO

__all__ = ["PatientRef", "patient", "replaced_patient"]

_US_CORE_RACE: Final = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
_US_CORE_ETHNICITY: Final = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
_CDC_RACE_ETHNICITY: Final = "urn:oid:2.16.840.1.113883.6.238"
_OMB_RACE: Final = frozenset({"1002-5", "2028-9", "2054-5", "2076-8", "2106-3"})
_OMB_ETHNICITY: Final = frozenset({"2135-2", "2186-5"})
_CDC_CODE: Final = re.compile(r"^\d{4}-\d$")
_BCP47: Final = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


@dataclass(frozen=True, slots=True)
class PatientRef:
    """The Patient entry of a message: its placeholder and its ``system|value`` key."""

    full_url: str
    system: str
    value: str

    @property
    def key(self) -> str:
        return f"{self.system}|{self.value}"

    @property
    def reference(self) -> Resource:
        return {"reference": self.full_url}


def _identifiers(pid: Segment, assembly: Assembly) -> list[Resource]:
    found: list[Resource] = []
    for field_no in (2, 3, 4):
        for rep in repetitions(pid, field_no):
            identifier = identifier_from_cx(rep, assembly, location_of(pid, field_no))
            if identifier is not None and identifier not in found:
                found.append(identifier)
    ssn = value(pid, 19)
    if ssn:
        found.append(
            {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "SS"}
                    ]
                },
                "system": "http://hl7.org/fhir/sid/us-ssn",
                "value": ssn,
            }
        )
    return found


def patient_key(pid: Segment, assembly: Assembly, field_no: int = 3) -> Resource:
    """The first usable identifier of PID-3 (or MRG-1): the Patient's conditional key."""
    for rep in repetitions(pid, field_no):
        identifier = identifier_from_cx(rep, assembly, location_of(pid, field_no))
        if identifier is not None:
            return identifier
    raise ConversionError("no usable patient identifier", location_of(pid, field_no))


def _race_or_ethnicity(
    pid: Segment, field_no: int, url: str, omb: frozenset[str]
) -> Resource | None:
    # US Core only when the codes are CDC Race & Ethnicity codes (v2.5+ table 0005/0189 or
    # CDCREC); older single-letter codes are not mapped rather than guessed.
    parts: list[Resource] = []
    texts: list[str] = []
    for rep in repetitions(pid, field_no):
        code = component(rep, 1)
        system = component(rep, 3).upper()
        if not _CDC_CODE.match(code) or system not in {"", "CDCREC", "HL70005", "HL70189"}:
            continue
        display = component_text(rep, 2)
        parts.append(
            {
                "url": "ombCategory" if code in omb else "detailed",
                "valueCoding": {"system": _CDC_RACE_ETHNICITY, "code": code, "display": display},
            }
        )
        texts.append(display or code)
    if not parts:
        return None
    return {"url": url, "extension": [*parts, {"url": "text", "valueString": ", ".join(texts)}]}


def _language(rep_code: str, rep_text: str) -> Resource | None:
    if _BCP47.match(rep_code) and len(rep_code.split("-")[0]) == 2:
        return {"coding": [{"system": "urn:ietf:bcp:47", "code": rep_code}], "text": rep_text}
    text = rep_text or rep_code
    return {"text": text} if text else None


def patient(
    pid: Segment,
    pd1: Segment | None,
    assembly: Assembly,
    *,
    owner: bool = True,
) -> PatientRef:
    """Write the Patient of a PID (and its PD1); returns its reference and key.

    ``owner``: the message is the source of truth for demographics (ADT) and the Patient is a
    conditional update; otherwise (results, orders, immunizations, schedules, documents) it is
    a conditional create — a Patient registration already knows is left untouched, an unknown
    one is created from this PID so the message's resources have a subject."""
    key = patient_key(pid, assembly)
    resource: Resource = {
        "identifier": _identifiers(pid, assembly),
        "active": True,
        "name": [
            name
            for field_no in (5, 9)
            for rep in repetitions(pid, field_no)
            if (name := human_name(rep, assembly, location_of(pid, field_no))) is not None
        ],
        "telecom": [
            telecom
            for field_no, use in ((13, "home"), (14, "work"), (40, None))
            for rep in repetitions(pid, field_no)
            if (
                telecom := contact_point(rep, assembly, location_of(pid, field_no), default_use=use)
            )
            is not None
        ],
        "address": [
            item
            for rep in repetitions(pid, 11)
            if (item := address(rep, assembly, location_of(pid, 11))) is not None
        ],
    }
    unique_names: list[Resource] = []
    for name in resource["name"]:
        if name not in unique_names:
            unique_names.append(name)
    resource["name"] = unique_names
    gender = mapped(value(pid, 8), ADMINISTRATIVE_SEX)
    resource["gender"] = gender.code if gender else None

    birth = value(pid, 7)
    if birth:
        parsed = parse_dtm(birth, "PID-7")  # strict: a wrong birth date is not dropped silently
        resource["birthDate"] = parsed.date()
        if parsed.has_time:
            resource["_birthDate"] = {
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                        "valueDateTime": parsed.date_time(assembly.default_zone),
                    }
                ]
            }

    died = value(pid, 29)
    if died:
        resource["deceasedDateTime"] = assembly.date_time(died, "PID-29")
    else:
        indicator = mapped(value(pid, 30), YES_NO)
        resource["deceasedBoolean"] = indicator.code == "true" if indicator else None

    births = value(pid, 25)
    if births.isdigit() and int(births) > 0:
        resource["multipleBirthInteger"] = int(births)
    else:
        indicator = mapped(value(pid, 24), YES_NO)
        resource["multipleBirthBoolean"] = indicator.code == "true" if indicator else None

    resource["maritalStatus"] = codeable_concept(
        pid.first(16) if value(pid, 16) else None,
        assembly,
        table="0002",
        concept_map=MARITAL_STATUS,
    )
    language = next(iter(repetitions(pid, 15)), None)
    if language is not None:
        concept = _language(component(language, 1), component_text(language, 2))
        resource["communication"] = [{"language": concept}] if concept else []

    extensions: list[Resource | None] = [
        _race_or_ethnicity(pid, 10, _US_CORE_RACE, _OMB_RACE),
        _race_or_ethnicity(pid, 22, _US_CORE_ETHNICITY, _OMB_ETHNICITY),
    ]
    maiden = next(iter(repetitions(pid, 6)), None)
    if maiden is not None and component(maiden, 1, 1):
        extensions.append(
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
                "valueString": component(maiden, 1, 1),
            }
        )
    if value(pid, 17):
        extensions.append(
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-religion",
                "valueCodeableConcept": codeable_concept(pid.first(17), assembly, table="0006"),
            }
        )
    resource["extension"] = extensions

    county = value(pid, 12)
    addresses = resource["address"]
    if county and len(addresses) == 1 and not addresses[0].get("district"):
        addresses[0]["district"] = county

    if pd1 is not None:
        resource["generalPractitioner"] = [
            reference
            for rep in repetitions(pd1, 4)
            if (reference := practitioner_reference(rep, assembly, "PD1-4")) is not None
        ]

    system, key_value = str(key["system"]), str(key["value"])
    # Not the owner: find the Patient by any of its PID-3 identifiers. A lab lists its own id
    # first and the hospital MRN after it; keyed on the first alone, the result feed would
    # create a second Patient carrying the MRN — and every later conditional update of the
    # registration on that MRN would match two Patients and be refused (HAPI-0958).
    also_match = (
        []
        if owner
        else [
            identifier
            for rep in repetitions(pid, 3)
            if (identifier := identifier_from_cx(rep, assembly, "PID-3")) is not None
        ]
    )
    full_url = assembly.put(
        "Patient",
        key,
        resource,
        location="PID-3",
        on_duplicate="reuse",
        method="PUT" if owner else "POST",
        also_match=also_match,
    )
    return PatientRef(full_url=full_url, system=system, value=key_value)


def replaced_patient(mrg: Segment, survivor: PatientRef, assembly: Assembly) -> PatientRef:
    """The Patient an A40 merges away (MRG-1): inactive, ``replaced-by`` the survivor.

    It is written from what MRG carries (MRG-1 identifiers, MRG-7 prior name): the merge is the
    last thing the sender says about that record. Moving references to the survivor is not done
    here. The survivor gets the matching ``replaces`` link (added by the caller's assembly).
    """
    key = patient_key(mrg, assembly, 1)
    if f"{key['system']}|{key['value']}" == survivor.key:
        raise ConversionError("the merged patient is the surviving patient", "MRG-1")
    identifiers = [
        identifier
        for rep in repetitions(mrg, 1)
        if (identifier := identifier_from_cx(rep, assembly, "MRG-1")) is not None
    ]
    resource: Resource = {
        "identifier": identifiers,
        "active": False,
        "name": [
            name
            for rep in repetitions(mrg, 7)
            if (name := human_name(rep, assembly, "MRG-7")) is not None
        ],
        "link": [{"other": survivor.reference, "type": "replaced-by"}],
    }
    full_url = assembly.put("Patient", key, resource, location="MRG-1")
    survivor_resource = assembly.resource_of(survivor.full_url)
    if survivor_resource is not None:
        survivor_resource.setdefault("link", []).append(
            {"other": {"reference": full_url}, "type": "replaces"}
        )
    return PatientRef(full_url=full_url, system=str(key["system"]), value=str(key["value"]))
