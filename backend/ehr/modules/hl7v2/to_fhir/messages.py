"""Per-event assembly: which segments of which message become which resources (IG message maps
ADT_A01, ADT_A02, ADT_A05, ADT_A06, ADT_A11, ORU_R01, ORM_O01, OML_O21, VXU_V04, SIU_S12,
MDM_T02).

Who writes with PUT: a message is the source of truth for what its type is about — ADT for
patients, visits, next of kin, allergies and diagnoses; ORM/OML for orders; ORU for reports and
observations; VXU for immunizations; SIU for appointments; MDM for documents. The Patient,
Encounter and ServiceRequest a message of another type carries are written as conditional
creates (``ifNoneExist`` on the same key): they exist for the references to resolve, and a
result feed's PID does not overwrite what registration said.

Not converted: OBX in ADT/VXU messages (height, weight, VFC eligibility…), IN1/GT1, SPM, PRT,
ROL, TQ2; they are left for later, never an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ehr.modules.hl7v2.parsing import Message, Segment
from ehr.modules.hl7v2.to_fhir.appointments import appointment
from ehr.modules.hl7v2.to_fhir.assembly import Assembly
from ehr.modules.hl7v2.to_fhir.clinical import allergy_intolerance, condition, related_person
from ehr.modules.hl7v2.to_fhir.conversion import Conversion, ConversionContext, ConversionError
from ehr.modules.hl7v2.to_fhir.datatypes import codeable_concept
from ehr.modules.hl7v2.to_fhir.documents import document_reference
from ehr.modules.hl7v2.to_fhir.encounter import VISIT_EVENTS, encounter
from ehr.modules.hl7v2.to_fhir.fields import value
from ehr.modules.hl7v2.to_fhir.header import message_header, provenance
from ehr.modules.hl7v2.to_fhir.immunizations import immunization
from ehr.modules.hl7v2.to_fhir.orders import service_request
from ehr.modules.hl7v2.to_fhir.patient import PatientRef, patient, replaced_patient
from ehr.modules.hl7v2.to_fhir.results import ResultGroup
from ehr.modules.hl7v2.to_fhir.vocabulary import DIAGNOSIS_TYPE

__all__ = ["SUPPORTED_EVENTS", "to_transaction"]

_ADT_TRIGGERS: Final = (
    "A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A11", "A13", "A14", "A28", "A31",
    "A40",
)  # fmt: skip
_PERSON_EVENTS: Final = frozenset({"A28", "A31"})  # person-level: their PV1 is a placeholder

SUPPORTED_EVENTS: Final[frozenset[str]] = frozenset(
    {f"ADT_{trigger}" for trigger in _ADT_TRIGGERS}
    | {"ORM_O01", "OML_O21", "ORU_R01", "VXU_V04", "MDM_T02"}
    | {f"SIU_S{number}" for number in (12, 13, 14, 15)}
)


def _required(message: Message, name: str) -> Segment:
    segment = message.first(name)
    if segment is None:
        raise ConversionError(f"the message has no {name} segment", name)
    return segment


def _adt(message: Message, assembly: Assembly) -> PatientRef:
    trigger = message.header.trigger_event
    if trigger == "A40":
        return _merge(message, assembly)
    pid = _required(message, "PID")
    patient_ref = patient(pid, message.first("PD1"), assembly, owner=True)
    assembly.focus.append(patient_ref.full_url)
    visit: str | None = None
    pv1 = message.first("PV1")
    if pv1 is not None and trigger not in _PERSON_EVENTS:
        visit = encounter(
            pv1, message.first("PV2"), patient_ref, assembly, trigger=trigger, owner=True
        )
        if visit is not None:
            assembly.focus.append(visit)
    elif pv1 is None and trigger in VISIT_EVENTS:
        raise ConversionError("the message has no PV1 segment", "PV1")
    for nk1 in message.segments("NK1"):
        related_person(nk1, patient_ref, assembly)
    for al1 in message.segments("AL1"):
        allergy_intolerance(al1, patient_ref, assembly)
    diagnoses = []
    for dg1 in message.segments("DG1"):
        found = condition(dg1, patient_ref, visit, assembly)
        if found is not None:
            rank = value(dg1, 15)
            diagnoses.append(
                {
                    "condition": {"reference": found},
                    "use": codeable_concept(
                        dg1.first(6), assembly, table="0052", concept_map=DIAGNOSIS_TYPE
                    ),
                    "rank": int(rank) if rank.isdigit() and int(rank) > 0 else None,
                }
            )
    visit_resource = assembly.resource_of(visit) if visit else None
    if visit_resource is not None and diagnoses:
        visit_resource["diagnosis"] = diagnoses
    return patient_ref


def _merge(message: Message, assembly: Assembly) -> PatientRef:
    """ADT A40 (ADT_A39 structure): each PID (the survivor) with its MRG (the record merged
    into it). References to the old record are moved elsewhere, not here.

    The survivor is found (or created), not replaced: merge messages often carry a thin PID,
    and replacing the survivor with it would wipe its address and phones. Its ``replaces``
    link is added after the transaction (``conversion``), when it already existed."""
    first: PatientRef | None = None
    survivor: PatientRef | None = None
    for segment in message:
        if segment.name == "PID":
            survivor = patient(segment, None, assembly, owner=False)
            assembly.focus.append(survivor.full_url)
            first = first or survivor
        elif segment.name == "MRG":
            if survivor is None:
                raise ConversionError("MRG without a PID before it", "MRG")
            old = replaced_patient(segment, survivor, assembly)
            assembly.focus.append(old.full_url)
            survivor = None
    if first is None:
        raise ConversionError("the message has no PID segment", "PID")
    if not message.segments("MRG"):
        raise ConversionError("the message has no MRG segment", "MRG")
    return first


def _patient_and_visit(message: Message, assembly: Assembly) -> tuple[PatientRef, str | None]:
    pid = _required(message, "PID")
    patient_ref = patient(pid, None, assembly, owner=False)
    pv1 = message.first("PV1")
    visit = (
        encounter(
            pv1,
            message.first("PV2"),
            patient_ref,
            assembly,
            trigger=message.header.trigger_event,
            owner=False,
        )
        if pv1 is not None
        else None
    )
    return patient_ref, visit


def _oru(message: Message, assembly: Assembly) -> PatientRef:
    """ORU R01: each OBR opens a report (after its ORC, if any); OBX are its observations;
    NTE belong to the OBX (or OBR) before them. Several patients are allowed (PATIENT_RESULT
    repeats); the first is the message's patient."""
    first: PatientRef | None = None
    patient_ref: PatientRef | None = None
    visit: str | None = None
    orc: Segment | None = None
    group: ResultGroup | None = None
    pending_obx: Segment | None = None
    notes: list[Segment] = []
    in_specimen = False

    def close_observation() -> None:
        nonlocal pending_obx, notes
        if group is not None:
            if pending_obx is not None:
                group.observation(pending_obx, notes)
            elif notes:
                group.add_notes(notes)
        pending_obx, notes = None, []

    for segment in message:
        name = segment.name
        if name in {"PID", "PV1", "ORC", "OBR", "OBX", "SPM"}:
            close_observation()
            in_specimen = name == "SPM"  # specimen notes (NTE after SPM) are not converted
        if name == "PID":
            patient_ref = patient(segment, None, assembly, owner=False)
            first = first or patient_ref
            visit, orc, group = None, None, None
        elif name == "PV1" and patient_ref is not None:
            visit = encounter(segment, None, patient_ref, assembly, trigger="R01", owner=False)
        elif name == "ORC":
            orc, group = segment, None
        elif name == "OBR":
            if patient_ref is None:
                raise ConversionError("OBR without a patient", "PID")
            group = ResultGroup(orc, segment, patient_ref, visit, assembly)
            group.open()
            assembly.focus.append(group.report)
            orc = None
        elif name == "OBX" and group is not None:
            pending_obx = segment
        elif name == "NTE" and group is not None and not in_specimen:
            notes.append(segment)
    close_observation()
    if first is None:
        raise ConversionError("the message has no PID segment", "PID")
    if not any(segment.name == "OBR" for segment in message):
        raise ConversionError("the message has no OBR segment", "OBR")
    return first


def _orders(message: Message, assembly: Assembly) -> PatientRef:
    """ORM O01 / OML O21: each ORC (with the OBR, TQ1 and NTE after it) is one ServiceRequest;
    an OBR without its own ORC is an order of its own."""
    patient_ref, visit = _patient_and_visit(message, assembly)
    orc: Segment | None = None
    obr: Segment | None = None
    tq1: Segment | None = None
    notes: list[Segment] = []
    seen_orders = False

    def flush() -> None:
        nonlocal orc, obr, tq1, notes, seen_orders
        if orc is not None or obr is not None:
            full_url = service_request(
                orc, obr, notes, patient_ref, visit, assembly, owner=True, tq1=tq1
            )
            assembly.focus.append(full_url)
            seen_orders = True
        orc, obr, tq1, notes = None, None, None, []

    in_observation = False
    for segment in message:
        name = segment.name
        if name == "ORC":
            flush()
            orc, in_observation = segment, False
        elif name == "OBR":
            if obr is not None:
                flush()
            obr, in_observation = segment, False
        elif name == "TQ1" and tq1 is None:
            tq1 = segment
        elif name in {"OBX", "SPM"}:
            in_observation = True  # ask-at-order-entry answers and specimens: not converted
        elif name == "NTE" and (orc is not None or obr is not None) and not in_observation:
            notes.append(segment)
    flush()
    if not seen_orders:
        raise ConversionError("the message has no ORC or OBR segment", "ORC")
    return patient_ref


def _vxu(message: Message, assembly: Assembly) -> PatientRef:
    """VXU V04: each RXA (with the ORC before it and the RXR after it) is one Immunization."""
    patient_ref, visit = _patient_and_visit(message, assembly)
    orc: Segment | None = None
    rxa: Segment | None = None
    rxr: Segment | None = None

    def flush() -> None:
        nonlocal orc, rxa, rxr
        if rxa is not None:
            assembly.focus.append(immunization(orc, rxa, rxr, patient_ref, visit, assembly))
            orc = None
        rxa, rxr = None, None

    for segment in message:
        if segment.name == "ORC":
            flush()
            orc = segment
        elif segment.name == "RXA":
            flush()
            rxa = segment
        elif segment.name == "RXR" and rxa is not None and rxr is None:
            rxr = segment
    flush()
    if not message.segments("RXA"):
        raise ConversionError("the message has no RXA segment", "RXA")
    return patient_ref


def _siu(message: Message, assembly: Assembly) -> PatientRef:
    patient_ref, visit = _patient_and_visit(message, assembly)
    assembly.focus.append(appointment(message, patient_ref, visit, assembly))
    return patient_ref


def _mdm(message: Message, assembly: Assembly) -> PatientRef:
    patient_ref, visit = _patient_and_visit(message, assembly)
    assembly.focus.append(document_reference(message, patient_ref, visit, assembly))
    return patient_ref


_CONVERTERS: Final[dict[str, Callable[[Message, Assembly], PatientRef]]] = {
    "ADT": _adt,
    "ORU": _oru,
    "ORM": _orders,
    "OML": _orders,
    "VXU": _vxu,
    "SIU": _siu,
    "MDM": _mdm,
}


def to_transaction(message: Message, context: ConversionContext) -> Conversion:
    """Convert one parsed message of a :data:`SUPPORTED_EVENTS` event into one FHIR R4
    transaction Bundle (conditional updates keyed on business identifiers, plus the message's
    MessageHeader and Provenance). Pure: no I/O.

    Raises :class:`ConversionError` for an unsupported event (location ``MSH-9``) and for
    content the conversion cannot apply (see its docstring).
    """
    event = message.header.event
    if event not in SUPPORTED_EVENTS:
        raise ConversionError(f"event {event[:20]} is not converted to FHIR", "MSH-9")
    assembly = Assembly(message, context)
    patient_ref = _CONVERTERS[message.header.message_type](message, assembly)
    message_header(assembly)
    provenance(assembly)
    bundle, summary = assembly.bundle()
    return Conversion(bundle=bundle, patient_identifier=patient_ref.key, summary=summary)
