"""SCH/AIS/AIL/AIP -> Appointment (IG segment maps SCH[Appointment], AIS[Appointment],
AIL[Appointment], AIP[Appointment]; vocabulary FillerStatusCodes[Appointment],
AppointmentTypeCodes, AppointmentReasonCodes).

Key: the filler appointment id SCH-2 (else placer SCH-1).

Status: S15 (cancellation) -> ``cancelled``; S12/S13/S14 -> SCH-25 through FillerStatusCodes
when mapped, else ``booked`` (new, rescheduled and modified appointments are booked).

Times: start from TQ1-7, else SCH-11.4, else the first AIS-4 / AIL-6 / AIP-6; end from TQ1-8,
else SCH-11.5, else start + the duration (SCH-9 in SCH-10 units, else AIS-7 in AIS-8 units;
minutes unless the units say hours). FHIR requires both for a booked appointment, so a
non-cancelled one without them is refused; times are strict.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ehr.modules.hl7v2.parsing import Message, Segment
from ehr.modules.hl7v2.to_fhir.assembly import Assembly, Resource
from ehr.modules.hl7v2.to_fhir.conversion import ConversionError
from ehr.modules.hl7v2.to_fhir.datatypes import (
    codeable_concept,
    identifier_from_ei,
    location_reference,
    mapped,
    practitioner_reference,
)
from ehr.modules.hl7v2.to_fhir.fields import repetitions, value
from ehr.modules.hl7v2.to_fhir.notes import formatted_text
from ehr.modules.hl7v2.to_fhir.patient import PatientRef
from ehr.modules.hl7v2.to_fhir.vocabulary import (
    APPOINTMENT_REASON,
    APPOINTMENT_TYPE,
    FILLER_STATUS,
)

__all__ = ["appointment", "appointment_status"]


def appointment_status(trigger: str, sch: Segment) -> str:
    """Appointment.status for the SIU trigger and SCH-25 (see the module docstring)."""
    if trigger == "S15":
        return "cancelled"
    target = mapped(value(sch, 25), FILLER_STATUS)
    return target.code if target else "booked"


def _minutes(amount: str, units: str) -> float | None:
    try:
        count = float(amount)
    except ValueError:
        return None
    unit = units.strip().lower()
    if unit in {"h", "hr", "hrs", "hour", "hours"}:
        return count * 60
    if unit in {"s", "sec", "second", "seconds"}:
        return count / 60
    return count


def _first_time(segments: list[tuple[Segment | None, int, int]]) -> tuple[str, str]:
    for segment, field_no, component_no in segments:
        if segment is not None and value(segment, field_no, component_no):
            return value(segment, field_no, component_no), f"{segment.name}-{field_no}"
    return "", ""


def _plus_minutes(start: str, minutes: float) -> str | None:
    try:
        moment = datetime.fromisoformat(start)
    except ValueError:
        return None
    if "T" not in start:
        return None
    end = moment + timedelta(minutes=minutes)
    return end.isoformat().replace("+00:00", "Z")


def appointment(
    message: Message, patient_ref: PatientRef, encounter: str | None, assembly: Assembly
) -> str:
    """Write the Appointment of an SIU S12-S15; returns its placeholder."""
    sch = message.first("SCH")
    if sch is None:
        raise ConversionError("the message has no SCH segment", "SCH")
    trigger = message.header.trigger_event
    filler = identifier_from_ei(sch.first(2), assembly, "SCH-2") if sch.first(2) else None
    placer = identifier_from_ei(sch.first(1), assembly, "SCH-1") if sch.first(1) else None
    key = filler or placer
    if key is None:
        raise ConversionError("no filler or placer appointment id", "SCH-2")
    status = appointment_status(trigger, sch)
    tq1 = message.first("TQ1")
    services = message.segments("AIS")
    locations = message.segments("AIL")
    people = message.segments("AIP")
    start_raw, start_at = _first_time(
        [(tq1, 7, 1), (sch, 11, 4)]
        + [(ais, 4, 1) for ais in services]
        + [(ail, 6, 1) for ail in locations]
        + [(aip, 6, 1) for aip in people]
    )
    end_raw, end_at = _first_time([(tq1, 8, 1), (sch, 11, 5)])
    start = assembly.date_time(start_raw, start_at) if start_raw else None
    end = assembly.date_time(end_raw, end_at) if end_raw else None
    minutes = _minutes(value(sch, 9), value(sch, 10)) if value(sch, 9) else None
    if minutes is None:
        minutes = next(
            (
                found
                for ais in services
                if value(ais, 7) and (found := _minutes(value(ais, 7), value(ais, 8))) is not None
            ),
            None,
        )
    if start and not end and minutes:
        end = _plus_minutes(start, minutes)
    if (not start or not end) and status not in {"cancelled", "proposed", "waitlist"}:
        raise ConversionError("no start and end for a booked appointment", "SCH-11")
    if not start or not end:
        start = end = None
    participants: list[Resource] = [{"actor": patient_ref.reference, "status": "accepted"}]
    for aip in people:
        for rep in repetitions(aip, 3):
            actor = practitioner_reference(rep, assembly, "AIP-3")
            if actor is not None:
                participants.append(
                    {
                        "type": [codeable_concept(role, assembly) for role in repetitions(aip, 4)],
                        "actor": actor,
                        "status": "accepted",
                    }
                )
    for ail in locations:
        for rep in repetitions(ail, 3):
            place = location_reference(rep, assembly, "AIL-3")
            if place is not None:
                participants.append({"actor": place, "status": "accepted"})
    reason = sch.first(7)
    kind = sch.first(8)
    comments = formatted_text(
        [rep for nte in message.segments("NTE") for rep in repetitions(nte, 3)]
    )
    resource: Resource = {
        "identifier": [placer, filler],
        "status": status,
        "cancelationReason": codeable_concept(sch.first(6), assembly)
        if status == "cancelled"
        else None,
        "serviceType": [
            codeable_concept(rep, assembly) for ais in services for rep in repetitions(ais, 3)
        ],
        "appointmentType": codeable_concept(
            kind, assembly, table="0277", concept_map=APPOINTMENT_TYPE
        ),
        "reasonCode": [
            codeable_concept(reason, assembly, table="0276", concept_map=APPOINTMENT_REASON)
        ],
        "start": start,
        "end": end,
        "minutesDuration": int(minutes) if minutes and minutes >= 1 else None,
        "comment": comments,
        "basedOn": [
            {"type": "ServiceRequest", "identifier": identifier}
            for field_no, type_code in ((26, "PLAC"), (27, "FILL"))
            for rep in repetitions(sch, field_no)
            if (
                identifier := identifier_from_ei(
                    rep, assembly, f"SCH-{field_no}", type_code=type_code
                )
            )
            is not None
        ],
        "participant": participants,
    }
    if encounter:
        resource["supportingInformation"] = [{"reference": encounter}]
    return assembly.put(
        "Appointment",
        {"system": key["system"], "value": key["value"]},
        resource,
        location="SCH-2" if filler else "SCH-1",
    )
