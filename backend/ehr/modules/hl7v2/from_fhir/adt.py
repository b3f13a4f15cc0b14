"""PID from a Patient, PV1 from an Encounter, and the ADT^A08 (update patient information)
message built from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from ehr.modules.hl7v2.er7 import (
    Er7,
    FieldValue,
    Part,
    composite,
    datetime_to_dtm,
    message,
    numbered_segment,
    segment,
)
from ehr.modules.hl7v2.from_fhir.datatypes import (
    OutboundMappingError,
    Resource,
    check_subject,
    cx,
    dt,
    dtm,
    has_type,
    object_,
    objects,
    xad,
    xpn,
    xtn,
)
from ehr.modules.hl7v2.from_fhir.header import msh

__all__ = ["adt_a08", "pid", "pv1"]

_BIRTH_TIME: Final = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"

# AdministrativeSex ConceptMap reversed (other ← O, A, N: O).
_SEX: Final = {"male": "M", "female": "F", "other": "O", "unknown": "U"}
# PatientClass_EncounterClass ConceptMap reversed; other classes are sent as U (unknown).
_PATIENT_CLASS: Final = {
    "EMER": "E",
    "IMP": "I",
    "AMB": "O",
    "PRENC": "P",
    "R": "R",
    "B": "B",
    "C": "C",
    "N": "N",
    "U": "U",
}


def adt_a08(
    *,
    patient: Resource,
    encounter: Resource | None,
    sending_application: str,
    sending_facility: str,
    receiving_application: str,
    receiving_facility: str,
    control_id: str,
    timestamp: datetime,
    processing_id: str = "P",
    accept_ack: str | None = None,
    application_ack: str | None = None,
) -> str:
    """An ADT^A08 (update patient information) message: MSH, EVN, PID, PV1.

    EVN-2 is when the change was recorded (``patient.meta.lastUpdated``, else
    ``timestamp``). Without an ``encounter`` the PV1 is ``PV1|1|N`` (not applicable).
    Raises :class:`OutboundMappingError` when a required field cannot be filled.
    """
    recorded = _meta_last_updated(patient)
    evn = numbered_segment(
        "EVN", {1: "A08", 2: recorded if recorded else datetime_to_dtm(timestamp)}
    )
    segments: list[Er7] = [evn, pid(patient)]
    if encounter is None:
        segments.append(segment("PV1", "1", "N"))
    else:
        check_subject(encounter, patient, "Encounter.subject")
        segments.append(pv1(encounter))
    header = msh(
        composite("ADT", "A08", "ADT_A01"),
        segments,
        sending_application=sending_application,
        sending_facility=sending_facility,
        receiving_application=receiving_application,
        receiving_facility=receiving_facility,
        control_id=control_id,
        timestamp=timestamp,
        processing_id=processing_id,
        accept_ack=accept_ack,
        application_ack=application_ack,
    )
    return message([header, *segments])


# --------------------------------------------------------------------------- PID


def pid(patient: Resource) -> Er7:
    identifiers = [found for item in objects(patient.get("identifier")) if (found := cx(item))]
    if not identifiers:
        raise OutboundMappingError(
            "the Patient has no identifier with a value for PID-3", "Patient.identifier"
        )
    names = [found for item in objects(patient.get("name")) if (found := xpn(item))]
    if not names:
        raise OutboundMappingError(
            "the Patient has no name with a family or given part for PID-5", "Patient.name"
        )
    home: list[Part] = []
    business: list[Part] = []
    for item in objects(patient.get("telecom")):
        telecom = xtn(item)
        if telecom:
            (business if item.get("use") == "work" else home).append(telecom)
    deceased_at = patient.get("deceasedDateTime")
    deceased = patient.get("deceasedBoolean")
    gender = patient.get("gender")
    fields: dict[int, FieldValue] = {
        1: "1",
        3: identifiers,
        5: names,
        7: _birth(patient),
        8: _SEX.get(gender) if isinstance(gender, str) else None,
        11: [found for item in objects(patient.get("address")) if (found := xad(item))],
        13: home,
        14: business,
        29: dtm(deceased_at, "Patient.deceasedDateTime"),
    }
    if isinstance(deceased_at, str) or deceased is True:
        fields[30] = "Y"
    elif deceased is False:
        fields[30] = "N"
    return numbered_segment("PID", fields)


def _birth(patient: Resource) -> str | None:
    birth_date = patient.get("birthDate")
    if birth_date is None:
        return None
    primitive = patient.get("_birthDate")
    if isinstance(primitive, Mapping):
        for extension in objects(primitive.get("extension")):
            if extension.get("url") == _BIRTH_TIME and extension.get("valueDateTime"):
                return dtm(extension.get("valueDateTime"), "Patient.birthDate.extension")
    return dt(birth_date, "Patient.birthDate")


def _meta_last_updated(resource: Resource) -> str | None:
    meta = resource.get("meta")
    updated = meta.get("lastUpdated") if isinstance(meta, Mapping) else None
    return dtm(updated, "Patient.meta.lastUpdated") if isinstance(updated, str) else None


# --------------------------------------------------------------------------- PV1


def pv1(encounter: Resource) -> Er7:
    """PV1: set id, patient class (Encounter.class), visit number (PV1-19), admit and
    discharge times (Encounter.period)."""
    encounter_class = encounter.get("class")
    code = encounter_class.get("code") if isinstance(encounter_class, Mapping) else None
    visits = [item for item in objects(encounter.get("identifier")) if cx(item)]
    visit = next((item for item in visits if has_type(item, "VN")), None)
    if visit is None and visits:
        visit = visits[0]
    period = object_(encounter.get("period"))
    return numbered_segment(
        "PV1",
        {
            1: "1",
            2: _PATIENT_CLASS.get(code, "U") if isinstance(code, str) else "U",
            19: cx(visit) if visit is not None else None,
            44: dtm(period.get("start"), "Encounter.period.start"),
            45: dtm(period.get("end"), "Encounter.period.end"),
        },
    )
