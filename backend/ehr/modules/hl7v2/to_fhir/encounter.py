"""PV1/PV2 -> Encounter (IG segment maps PV1[Encounter], PV2[Encounter], vocabulary
PatientClass[EncounterClass], PatientClass[EncounterStatus], Event[EncounterStatus]).

Key: the visit number PV1-19 (CX, system from CX.4 else MSH-4/MSH-3, type ``VN``). When a
sender leaves PV1-19 empty, the key is derived from the patient and the admit time PV1-44
(``urn:ehr:hl7v2:visit`` | uuid5 of both) so the messages of that stay still meet; with neither,
there is no Encounter (and events that are about the visit itself — A02, A03, A11, A13 —
are refused).

Status: by event, after the IG's Event[EncounterStatus] map, except A04 (register an outpatient,
who has arrived), which is ``in-progress`` rather than the IG's ``planned``; A06/A07 (the class
changes, the stay goes on) are ``in-progress``. Events the map has no status for (A08, and the
PV1 of an ORU/ORM/SIU…) take the IG's PV1 rule: ``finished`` when PV1-45 is valued, else
PatientClass[EncounterStatus] of PV1-2. A11 (cancel admit) is ``cancelled``; A13 (cancel
discharge) is ``in-progress`` again and its Encounter is written without an end.
"""

from __future__ import annotations

import uuid
from typing import Final

from ehr.modules.hl7v2.parsing import Segment
from ehr.modules.hl7v2.to_fhir.assembly import Assembly, Resource
from ehr.modules.hl7v2.to_fhir.conversion import ConversionError
from ehr.modules.hl7v2.to_fhir.datatypes import (
    codeable_concept,
    identifier_from_cx,
    identifier_type,
    location_reference,
    mapped,
    practitioner_reference,
)
from ehr.modules.hl7v2.to_fhir.fields import location_of, repetitions, value
from ehr.modules.hl7v2.to_fhir.identifiers import LOCAL_PREFIX
from ehr.modules.hl7v2.to_fhir.patient import PatientRef
from ehr.modules.hl7v2.to_fhir.vocabulary import (
    EVENT_ENCOUNTER_STATUS,
    PATIENT_CLASS,
    PATIENT_CLASS_STATUS,
)

__all__ = ["VISIT_EVENTS", "encounter", "encounter_status"]

_PARTICIPATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_VISIT_KEYS: Final = uuid.UUID("3d0c7e58-6a2b-5c41-8f9d-1e2a3b4c5d6e")

# Events whose whole point is the visit: without a visit key they cannot be applied.
VISIT_EVENTS: Final = frozenset({"A02", "A03", "A11", "A13"})

_EVENT_STATUS_OVERRIDES: Final[dict[str, str]] = {
    "A04": "in-progress",
    "A06": "in-progress",
    "A07": "in-progress",
    "A14": "planned",
}

_PARTICIPANTS: Final = (
    (7, "ATND", "attender"),
    (8, "REF", "referrer"),
    (9, "CON", "consultant"),
    (17, "ADM", "admitter"),
    (52, "PART", "Participation"),
)


def encounter_status(trigger: str, pv1: Segment) -> str:
    """The Encounter.status for ``trigger`` (``"A01"``…) and its PV1, as documented above."""
    if trigger in _EVENT_STATUS_OVERRIDES:
        return _EVENT_STATUS_OVERRIDES[trigger]
    by_event = EVENT_ENCOUNTER_STATUS.get(trigger)
    if by_event is not None and by_event.code != "unknown":
        return by_event.code
    if value(pv1, 45):
        return "finished"
    by_class = mapped(value(pv1, 2), PATIENT_CLASS_STATUS)
    return by_class.code if by_class else "unknown"


def _visit_key(pv1: Segment, patient_ref: PatientRef, assembly: Assembly) -> Resource | None:
    visit = pv1.first(19)
    identifier = identifier_from_cx(visit, assembly, "PV1-19") if visit is not None else None
    if identifier is not None:
        identifier["type"] = identifier_type("VN")
        return identifier
    admitted = assembly.date_time(value(pv1, 44), "PV1-44")
    if admitted is None:
        return None
    digest = uuid.uuid5(_VISIT_KEYS, f"{patient_ref.key}|{admitted}")
    return {"system": f"{LOCAL_PREFIX}visit", "value": str(digest)}


def _pre_admission(pv1: Segment, assembly: Assembly) -> Resource | None:
    rep = pv1.first(5)
    return identifier_from_cx(rep, assembly, "PV1-5") if rep is not None else None


def _location(pv1: Segment, field_no: int, status: str, assembly: Assembly) -> Resource | None:
    reference = location_reference(pv1.first(field_no), assembly, location_of(pv1, field_no))
    return {"location": reference, "status": status} if reference else None


def encounter(
    pv1: Segment,
    pv2: Segment | None,
    patient_ref: PatientRef,
    assembly: Assembly,
    *,
    trigger: str,
    owner: bool,
) -> str | None:
    """Write the Encounter of a PV1 (and PV2); returns its placeholder, or None when the
    visit has no key. ``owner`` says the message is the source of truth for visits (ADT): a
    conditional update; otherwise a conditional create that leaves a known visit untouched."""
    key = _visit_key(pv1, patient_ref, assembly)
    if key is None:
        if trigger in VISIT_EVENTS and owner:
            raise ConversionError("no visit number and no admit time to key the visit", "PV1-19")
        return None
    status = encounter_status(trigger, pv1)
    patient_class = mapped(value(pv1, 2), PATIENT_CLASS)
    planned = value(pv1, 2).upper() == "P" or status == "planned"
    period_end = None if trigger == "A13" else assembly.date_time(value(pv1, 45), "PV1-45")
    identifiers = [key] + [
        identifier
        for rep in repetitions(pv1, 50)
        if (identifier := identifier_from_cx(rep, assembly, "PV1-50")) is not None
    ]
    resource: Resource = {
        "identifier": identifiers,
        "status": status,
        "class": {
            "system": patient_class.system,
            "code": patient_class.code,
            "display": patient_class.display,
        }
        if patient_class
        else {"system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "code": "UNK"},
        "type": [codeable_concept(pv1.first(4), assembly, table="0007")],
        "serviceType": codeable_concept(pv1.first(10), assembly, table="0069"),
        "priority": codeable_concept(pv2.first(25), assembly, table="0217") if pv2 else None,
        "subject": patient_ref.reference,
        "participant": [
            {
                "type": [
                    {"coding": [{"system": _PARTICIPATION, "code": code, "display": display}]}
                ],
                "individual": individual,
            }
            for field_no, code, display in _PARTICIPANTS
            for rep in repetitions(pv1, field_no)
            if (individual := practitioner_reference(rep, assembly, location_of(pv1, field_no)))
            is not None
        ],
        "period": {
            "start": assembly.date_time(value(pv1, 44), "PV1-44"),
            "end": period_end,
        },
        "reasonCode": [codeable_concept(rep, assembly) for rep in repetitions(pv2, 3)]
        if pv2
        else [],
        "hospitalization": {
            "preAdmissionIdentifier": _pre_admission(pv1, assembly),
            "admitSource": codeable_concept(pv1.first(14), assembly, table="0023"),
            "reAdmission": codeable_concept(pv1.first(13), assembly, table="0092"),
            "specialCourtesy": [codeable_concept(pv1.first(16), assembly, table="0099")],
            "specialArrangement": [
                codeable_concept(rep, assembly, table="0009") for rep in repetitions(pv1, 15)
            ],
            "dischargeDisposition": codeable_concept(pv1.first(36), assembly, table="0112"),
        },
        "location": [
            _location(pv1, 3, "planned" if planned else "active", assembly),
            _location(pv1, 6, "completed", assembly),
            _location(pv1, 11, "active", assembly),
            _location(pv1, 42, "reserved", assembly),
        ],
    }
    return assembly.put(
        "Encounter", key, resource, location="PV1-19", method="PUT" if owner else "POST"
    )
