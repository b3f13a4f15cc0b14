"""NK1 -> RelatedPerson, AL1 -> AllergyIntolerance, DG1 -> Condition (IG segment maps
NK1[RelatedPerson], AL1[AllergyIntolerance], DG1[Condition]): the people and problems a message
records for its patient.

None of these segments carries a business identifier the conversion can rely on, so each record
is keyed on its identifier when the sender gives one (NK1-12/33, DG1-20) and otherwise on a key
derived from the patient and what the record is about, so that a resend updates it.
"""

from __future__ import annotations

import uuid
from typing import Final

from ehr.modules.hl7v2.parsing import Segment
from ehr.modules.hl7v2.to_fhir.assembly import Assembly, Resource
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
from ehr.modules.hl7v2.to_fhir.fields import (
    component,
    component_text,
    location_of,
    repetitions,
    value,
)
from ehr.modules.hl7v2.to_fhir.identifiers import LOCAL_PREFIX
from ehr.modules.hl7v2.to_fhir.patient import PatientRef
from ehr.modules.hl7v2.to_fhir.vocabulary import (
    ADMINISTRATIVE_SEX,
    ALLERGEN_CATEGORY,
    ALLERGY_CRITICALITY,
    ALLERGY_TYPE,
    CONTACT_ROLE,
    RELATIONSHIP,
)

__all__ = ["allergy_intolerance", "condition", "related_person"]

_DERIVED_KEYS: Final = uuid.UUID("0b8e4a57-3c1d-5f62-9a0e-7d4c2b1f8e93")


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
