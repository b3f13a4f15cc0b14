"""ORC/OBR -> ServiceRequest (IG segment maps ORC[ServiceRequest], OBR[ServiceRequest],
NTE[ServiceRequest]; vocabulary OrderControlCode[ServiceRequest.status], OrderStatus,
ExtendedPriorityCodes).

Key: the placer order number (ORC-2, else OBR-2; Identifier.type ``PLAC``); the filler number
(ORC-3, else OBR-3; ``FILL``) is carried too and keys the order when there is no placer number.

Status: ORC-5 (order status) through OrderStatus when valued, else ORC-1 (order control)
through OrderControlCode — as the IG maps it, so a ``CA`` (cancel *request*) without ORC-5 stays
``active`` until the filler confirms (``CR``, or ORC-5 ``CA``) and ``DC``/``OC`` are
``revoked``; a control code the IG leaves unmapped (``XO``, ``SC`` without ORC-5…) gives
``unknown``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ehr.modules.hl7v2.parsing import Repetition, Segment
from ehr.modules.hl7v2.to_fhir.assembly import Assembly, Resource
from ehr.modules.hl7v2.to_fhir.conversion import ConversionError
from ehr.modules.hl7v2.to_fhir.datatypes import (
    codeable_concept,
    identifier_from_ei,
    mapped,
    practitioner_reference,
)
from ehr.modules.hl7v2.to_fhir.fields import repetitions, value
from ehr.modules.hl7v2.to_fhir.notes import note_annotations
from ehr.modules.hl7v2.to_fhir.patient import PatientRef
from ehr.modules.hl7v2.to_fhir.vocabulary import ORDER_CONTROL_STATUS, ORDER_STATUS, PRIORITY

__all__ = ["OrderNumbers", "order_numbers", "service_request", "service_request_status"]


@dataclass(frozen=True, slots=True)
class OrderNumbers:
    """The placer and filler order numbers of an ORC/OBR pair, as Identifiers."""

    placer: Resource | None
    filler: Resource | None


def _first_ei(
    segments: Sequence[tuple[Segment | None, int]], assembly: Assembly, type_code: str
) -> Resource | None:
    for segment, field_no in segments:
        if segment is None:
            continue
        rep = segment.first(field_no)
        if rep is None:
            continue
        identifier = identifier_from_ei(
            rep, assembly, f"{segment.name}-{field_no}", type_code=type_code
        )
        if identifier is not None:
            return identifier
    return None


def order_numbers(
    orc: Segment | None, obr: Segment | None, assembly: Assembly, *, obr_first: bool = False
) -> OrderNumbers:
    """Placer (ORC-2/OBR-2) and filler (ORC-3/OBR-3) numbers; ``obr_first`` reads OBR before
    ORC (results: the OBR is the report's own record)."""
    placer_fields = [(orc, 2), (obr, 2)]
    filler_fields = [(orc, 3), (obr, 3)]
    if obr_first:
        placer_fields.reverse()
        filler_fields.reverse()
    return OrderNumbers(
        placer=_first_ei(placer_fields, assembly, "PLAC"),
        filler=_first_ei(filler_fields, assembly, "FILL"),
    )


def service_request_status(orc: Segment | None) -> str:
    """ServiceRequest.status from ORC-5, else ORC-1 (see the module docstring)."""
    if orc is None:
        return "unknown"
    by_status = mapped(value(orc, 5), ORDER_STATUS)
    if by_status is not None:
        return by_status.code
    by_control = mapped(value(orc, 1), ORDER_CONTROL_STATUS)
    return by_control.code if by_control else "unknown"


def _priority(orc: Segment | None, obr: Segment | None, tq1: Segment | None) -> str | None:
    candidates = [
        value(obr, 5) if obr else "",
        value(tq1, 9) if tq1 else "",
        value(orc, 7, 6) if orc else "",
        value(obr, 27, 6) if obr else "",
    ]
    for code in candidates:
        target = mapped(code, PRIORITY)
        if target is not None:
            return target.code
    return None


def _requester(orc: Segment | None, obr: Segment | None, assembly: Assembly) -> Resource | None:
    for segment in (orc, obr):
        if segment is None:
            continue
        field_no = 12 if segment.name == "ORC" else 16
        reference = practitioner_reference(
            segment.first(field_no), assembly, f"{segment.name}-{field_no}"
        )
        if reference is not None:
            return reference
    return None


def _reasons(obr: Segment | None, assembly: Assembly) -> list[Resource | None]:
    if obr is None:
        return []
    return [codeable_concept(rep, assembly) for rep in repetitions(obr, 31)]


def _requisition(orc: Segment | None, assembly: Assembly) -> Resource | None:
    rep: Repetition | None = orc.first(4) if orc else None
    if rep is None:
        return None
    return identifier_from_ei(rep, assembly, "ORC-4", type_code="PGN")


def service_request(
    orc: Segment | None,
    obr: Segment | None,
    notes: Sequence[Segment],
    patient_ref: PatientRef,
    encounter: str | None,
    assembly: Assembly,
    *,
    owner: bool,
    tq1: Segment | None = None,
) -> str:
    """Write the ServiceRequest of an ORC/OBR pair; returns its placeholder.

    ``owner``: the message is an order message (ORM/OML) and the order is a conditional update;
    a result message only makes sure the order exists (a conditional create, leaving an order
    already known — ours or the placer's — untouched) so DiagnosticReport.basedOn resolves.
    """
    numbers = order_numbers(orc, obr, assembly)
    key = numbers.placer or numbers.filler
    if key is None:
        raise ConversionError("no placer or filler order number", "ORC-2" if orc else "OBR-2")
    control = value(orc, 1).upper() if orc else ""
    intent = "reflex-order" if obr is not None and value(obr, 11).upper() == "G" else "order"
    start = (value(tq1, 7) if tq1 else "") or (value(orc, 7, 4) if orc else "")
    requested = value(obr, 6) if obr else ""
    resource: Resource = {
        "identifier": [numbers.placer, numbers.filler],
        "requisition": _requisition(orc, assembly),
        "status": service_request_status(orc) if orc else "active",
        "intent": intent,
        "priority": _priority(orc, obr, tq1),
        "code": codeable_concept(obr.first(4), assembly) if obr else None,
        "subject": patient_ref.reference,
        "encounter": {"reference": encounter} if encounter else None,
        "occurrenceDateTime": assembly.date_time(start or requested, "TQ1-7", strict=False),
        "authoredOn": assembly.date_time(value(orc, 9), "ORC-9", strict=False)
        if orc is not None and control == "NW"
        else None,
        "requester": _requester(orc, obr, assembly),
        "reasonCode": _reasons(obr, assembly),
        "note": note_annotations(notes, assembly),
    }
    if numbers.placer is None and key is numbers.filler:
        resource["identifier"] = [numbers.filler]
    location = "ORC-2" if numbers.placer else "ORC-3"
    return assembly.put(
        "ServiceRequest",
        {"system": key["system"], "value": key["value"]},
        resource,
        location=location,
        method="PUT" if owner else "POST",
        on_duplicate="error" if owner else "reuse",
    )
