"""PID/PD1 -> Patient, NK1 -> RelatedPerson, AL1 -> AllergyIntolerance, DG1 -> Condition,
MRG -> the replaced Patient of a merge (IG segment maps PID[Patient], PD1[Patient],
NK1[RelatedPerson], AL1[AllergyIntolerance], DG1[Condition]).

The Patient is a conditional update keyed on the first usable PID-3 repetition (one with an id;
its system from CX.4, else MSH-4/MSH-3); a message that does not own the Patient (a result,
order…) finds it by any of its PID-3 identifiers. A PUT replaces the whole Patient: for an
ADT A08 (and every other message with a PID) that is intended — the registration system is the
source of truth for demographics, and an element it sends as ``""`` or leaves out is cleared.
"""

from __future__ import annotations

import re
import uuid
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
    identifier_from_ei,
    mapped,
    normalise_code,
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
from ehr.modules.hl7v2.to_fhir.identifiers import LOCAL_PREFIX
from ehr.modules.hl7v2.to_fhir.vocabulary import (
    ADMINISTRATIVE_SEX,
    ALLERGEN_CATEGORY,
    ALLERGY_CRITICALITY,
    ALLERGY_TYPE,
    CONTACT_ROLE,
    MARITAL_STATUS,
    RELATIONSHIP,
    YES_NO,
)

__all__ = [
    "PatientRef",
    "allergy_intolerance",
    "condition",
    "patient",
    "related_person",
    "replaced_patient",
]

_US_CORE_RACE: Final = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
_US_CORE_ETHNICITY: Final = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
_CDC_RACE_ETHNICITY: Final = "urn:oid:2.16.840.1.113883.6.238"
_OMB_RACE: Final = frozenset({"1002-5", "2028-9", "2054-5", "2076-8", "2106-3"})
_OMB_ETHNICITY: Final = frozenset({"2135-2", "2186-5"})
_CDC_CODE: Final = re.compile(r"^\d{4}-\d$")
_DERIVED_KEYS: Final = uuid.UUID("0b8e4a57-3c1d-5f62-9a0e-7d4c2b1f8e93")
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


def _derived_key(patient_ref: PatientRef, kind: str, *parts: str) -> Resource:
    """A business key for records the message gives no identifier for (NK1, AL1, DG1): a
    uuid5 of the patient key and ``parts`` under ``urn:ehr:hl7v2:<kind>`` (deterministic, so a
    resend finds the same record)."""
    digest = uuid.uuid5(_DERIVED_KEYS, "|".join([patient_ref.key, kind, *parts]))
    return {"system": f"{LOCAL_PREFIX}{kind}", "value": str(digest)}


def related_person(nk1: Segment, patient_ref: PatientRef, assembly: Assembly) -> str | None:
    """NK1 -> RelatedPerson (IG NK1[RelatedPerson]), keyed on NK1-12/33 when valued, else on
    the patient and NK1-1 (set id): a later message with the same set id updates it."""
    names = [
        name
        for field_no in (2, 30)
        for rep in repetitions(nk1, field_no)
        if (name := human_name(rep, assembly, location_of(nk1, field_no))) is not None
    ]
    identifiers = [
        identifier
        for field_no in (12, 33)
        for rep in repetitions(nk1, field_no)
        if (identifier := identifier_from_cx(rep, assembly, location_of(nk1, field_no))) is not None
    ]
    if not names and not identifiers:
        return None
    relationships = [
        codeable_concept(rep, assembly, table="0063", concept_map=RELATIONSHIP)
        for rep in repetitions(nk1, 3)
    ] + [
        codeable_concept(rep, assembly, table="0131", concept_map=CONTACT_ROLE)
        for rep in repetitions(nk1, 7)
    ]
    gender = mapped(value(nk1, 15), ADMINISTRATIVE_SEX)
    resource: Resource = {
        "identifier": identifiers,
        "active": True,
        "patient": patient_ref.reference,
        "relationship": relationships,
        "name": names,
        "telecom": [
            telecom
            for field_no, use in ((5, None), (6, "work"), (31, None), (40, None), (41, None))
            for rep in repetitions(nk1, field_no)
            if (
                telecom := contact_point(rep, assembly, location_of(nk1, field_no), default_use=use)
            )
            is not None
        ],
        "address": [
            item
            for field_no in (4, 32)
            for rep in repetitions(nk1, field_no)
            if (item := address(rep, assembly, location_of(nk1, field_no))) is not None
        ],
        "gender": gender.code if gender else None,
        "birthDate": assembly.date(value(nk1, 16), "NK1-16", strict=False),
        "period": {
            "start": assembly.date(value(nk1, 8), "NK1-8", strict=False),
            "end": assembly.date(value(nk1, 9), "NK1-9", strict=False),
        },
    }
    key = (
        identifiers[0]
        if identifiers
        else _derived_key(patient_ref, "related-person", value(nk1, 1) or "1")
    )
    return assembly.put("RelatedPerson", key, resource, location="NK1")


def allergy_intolerance(al1: Segment, patient_ref: PatientRef, assembly: Assembly) -> str | None:
    """AL1 -> AllergyIntolerance (IG AL1[AllergyIntolerance]), keyed on the patient and the
    allergen (AL1-3 code, else its text): the same allergen sent again updates the record."""
    allergen = al1.first(3)
    code = codeable_concept(allergen, assembly)
    if code is None or allergen is None:
        return None
    allergen_key = normalise_code(component_text(allergen, 1) or component_text(allergen, 2))
    kind = value(al1, 2)
    category = mapped(kind, ALLERGEN_CATEGORY)
    allergy_type = mapped(kind, ALLERGY_TYPE)
    severity = mapped(value(al1, 4), ALLERGY_CRITICALITY)
    reactions = [
        {"manifestation": [{"text": component_text(rep, 1)}]}
        for rep in repetitions(al1, 5)
        if component_text(rep, 1)
    ]
    resource: Resource = {
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active",
                }
            ]
        },
        "type": allergy_type.code if allergy_type else None,
        "category": [category.code] if category else [],
        "criticality": severity.code if severity else None,
        "code": code,
        "patient": patient_ref.reference,
        "onsetDateTime": assembly.date_time(value(al1, 6), "AL1-6", strict=False),
        "reaction": reactions,
    }
    key = _derived_key(patient_ref, "allergy", component(allergen, 3).upper(), allergen_key)
    return assembly.put("AllergyIntolerance", key, resource, location="AL1-3", on_duplicate="reuse")


def condition(
    dg1: Segment, patient_ref: PatientRef, encounter: str | None, assembly: Assembly
) -> str | None:
    """DG1 -> Condition (IG DG1[Condition]) as an encounter diagnosis, keyed on DG1-20 when
    valued, else on the patient, the visit and the diagnosis code (DG1-3)."""
    diagnosis = dg1.first(3)
    code = codeable_concept(diagnosis, assembly)
    if code is None and value(dg1, 4):
        code = {"text": value(dg1, 4)}
    if code is None:
        return None
    deleted = value(dg1, 21).upper() == "D"
    identifiers = [
        identifier
        for rep in repetitions(dg1, 20)
        if (identifier := identifier_from_ei(rep, assembly, "DG1-20")) is not None
    ]
    resource: Resource = {
        "identifier": identifiers,
        "clinicalStatus": None
        if deleted
        else {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "entered-in-error",
                }
            ]
        }
        if deleted
        else None,
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "encounter-diagnosis",
                    }
                ]
            }
        ],
        "code": code,
        "subject": patient_ref.reference,
        "encounter": {"reference": encounter} if encounter else None,
        "onsetDateTime": assembly.date_time(value(dg1, 5), "DG1-5", strict=False),
        "recordedDate": assembly.date_time(value(dg1, 19), "DG1-19", strict=False),
        "asserter": practitioner_reference(dg1.first(16), assembly, "DG1-16"),
    }
    if identifiers:
        key = identifiers[0]
    else:
        code_key = normalise_code(
            (component_text(diagnosis, 1) if diagnosis is not None else "") or value(dg1, 4)
        )
        visit = (encounter or "").removeprefix("urn:uuid:")
        key = _derived_key(patient_ref, "diagnosis", visit, code_key)
    return assembly.put("Condition", key, resource, location="DG1-3", on_duplicate="reuse")
