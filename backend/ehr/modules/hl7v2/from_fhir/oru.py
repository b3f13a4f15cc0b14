"""ORC, OBR, OBX and NTE from a DiagnosticReport, its Observations and the ServiceRequest it
answers, and the ORU^R01 (unsolicited observation result) message built from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from ehr.fhir.datatypes import codings
from ehr.modules.hl7v2.er7 import (
    Er7,
    Part,
    composite,
    escape,
    message,
    numbered_segment,
    segment,
)
from ehr.modules.hl7v2.from_fhir.adt import pid, pv1
from ehr.modules.hl7v2.from_fhir.datatypes import (
    OutboundMappingError,
    Resource,
    check_subject,
    cwe,
    dt,
    dtm,
    ei,
    has_type,
    identifier_type,
    number,
    object_,
    objects,
    system_name,
    text,
)
from ehr.modules.hl7v2.from_fhir.header import msh

__all__ = ["oru_r01"]

_V2_0074: Final = "http://terminology.hl7.org/CodeSystem/v2-0074"
_ST_LIMIT: Final = 199  # longer text goes as TX

# ResultStatus (table 0123) ConceptMap reversed: registered ← O, I, S: O; amended and
# appended (kinds of corrected in the map's comment) → C. entered-in-error, unknown: none.
_REPORT_STATUS: Final = {
    "registered": "O",
    "partial": "R",
    "preliminary": "P",
    "final": "F",
    "corrected": "C",
    "amended": "C",
    "appended": "C",
    "cancelled": "X",
}
# ObservationResultStatusCodesInterpretation (table 0085) reversed: entered-in-error ← D, W:
# W (post original as wrong); amended ← A, which 2.5.1 does not have: C; registered (no
# result yet, not in the map) → I (specimen in lab, results pending). unknown: none.
_OBSERVATION_STATUS: Final = {
    "registered": "I",
    "preliminary": "P",
    "final": "F",
    "amended": "C",
    "corrected": "C",
    "cancelled": "X",
    "entered-in-error": "W",
}
_INTERPRETATION_SYSTEMS: Final = frozenset(
    {
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
        "http://terminology.hl7.org/CodeSystem/v2-0078",
    }
)


def oru_r01(
    *,
    patient: Resource,
    report: Resource,
    observations: Sequence[Resource],
    service_request: Resource | None,
    sending_application: str,
    sending_facility: str,
    receiving_application: str,
    receiving_facility: str,
    control_id: str,
    timestamp: datetime,
    encounter: Resource | None = None,
    processing_id: str = "P",
    accept_ack: str | None = None,
    application_ack: str | None = None,
) -> str:
    """An ORU^R01 result message: MSH, PID, [PV1 when ``encounter`` is given], ORC (RE),
    OBR, NTE for ``report.conclusion``, then per Observation an OBX (and one per
    ``component``, sub-id ``n.k``) followed by NTEs for its notes.

    Raises :class:`OutboundMappingError` when a required field cannot be filled, or when the
    report or an observation is about another patient than ``patient``.
    """
    check_subject(report, patient, "DiagnosticReport.subject")
    for observation in observations:
        check_subject(observation, patient, "Observation.subject")
    placer = _placer_number(service_request, report)
    filler = _filler_number(report, service_request, sending_application)
    segments: list[Er7] = [pid(patient)]
    if encounter is not None:
        check_subject(encounter, patient, "Encounter.subject")
        segments.append(pv1(encounter))
    segments.append(numbered_segment("ORC", {1: "RE", 2: placer, 3: filler}))
    segments.append(_obr(report, placer, filler))
    conclusion = report.get("conclusion")
    if isinstance(conclusion, str) and conclusion.strip():
        segments.append(_nte(1, conclusion))
    set_id = 0
    for index, observation in enumerate(observations, start=1):
        components = [item for item in objects(observation.get("component")) if item.get("code")]
        set_id += 1
        segments.append(_obx(set_id, observation, observation, str(index) if components else None))
        for note_number, note in enumerate(_note_texts(observation), start=1):
            segments.append(_nte(note_number, note))
        for sub, component in enumerate(components, start=1):
            set_id += 1
            segments.append(_obx(set_id, component, observation, f"{index}.{sub}"))
    header = msh(
        composite("ORU", "R01", "ORU_R01"),
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


# --------------------------------------------------------------------------- ORC / OBR


def _placer_number(service_request: Resource | None, report: Resource) -> Er7 | None:
    """OBR-2/ORC-2: a PLAC identifier of the order, else of the report, else the order's
    first identifier without a type."""
    order_ids = objects(service_request.get("identifier")) if service_request else []
    for item in [*order_ids, *objects(report.get("identifier"))]:
        if has_type(item, "PLAC") and (found := ei(item)):
            return found
    for item in order_ids:
        if identifier_type(item) is None and (found := ei(item)):
            return found
    return None


def _filler_number(
    report: Resource, service_request: Resource | None, sending_application: str
) -> Er7:
    """OBR-3/ORC-3: a FILL identifier of the report, else of the order, else the report's
    first identifier without a type, else the report's id under our namespace (we are the
    filler of what we send)."""
    report_ids = objects(report.get("identifier"))
    order_ids = objects(service_request.get("identifier")) if service_request else []
    for item in [*report_ids, *order_ids]:
        if has_type(item, "FILL") and (found := ei(item)):
            return found
    for item in report_ids:
        if identifier_type(item) is None and (found := ei(item)):
            return found
    report_id = report.get("id")
    if isinstance(report_id, str) and report_id:
        return composite(report_id, sending_application)
    raise OutboundMappingError(
        "the DiagnosticReport has no filler identifier and no id for OBR-3",
        "DiagnosticReport.identifier",
    )


def _obr(report: Resource, placer: Er7 | None, filler: Er7) -> Er7:
    service = cwe(report.get("code"))
    if service is None:
        raise OutboundMappingError(
            "the DiagnosticReport has no code for OBR-4", "DiagnosticReport.code"
        )
    status = report.get("status")
    result_status = _REPORT_STATUS.get(status) if isinstance(status, str) else None
    if result_status is None:
        raise OutboundMappingError(
            "the DiagnosticReport status has no HL7 v2 result status (table 0123) for OBR-25",
            "DiagnosticReport.status",
        )
    start, end = _effective(report, "DiagnosticReport")
    section = next(
        (
            coding.code
            for category in objects(report.get("category"))
            for coding in codings(category)
            if coding.system == _V2_0074
        ),
        None,
    )
    return numbered_segment(
        "OBR",
        {
            1: "1",
            2: placer,
            3: filler,
            4: service,
            7: start,
            8: end,
            22: dtm(report.get("issued"), "DiagnosticReport.issued"),
            24: section,
            25: result_status,
        },
    )


def _effective(resource: Resource, name: str) -> tuple[str | None, str | None]:
    """effective[x] as (start, end) DTMs."""
    if "effectiveDateTime" in resource:
        return dtm(resource.get("effectiveDateTime"), f"{name}.effectiveDateTime"), None
    if "effectiveInstant" in resource:
        return dtm(resource.get("effectiveInstant"), f"{name}.effectiveInstant"), None
    period = resource.get("effectivePeriod")
    if isinstance(period, Mapping):
        return (
            dtm(period.get("start"), f"{name}.effectivePeriod.start"),
            dtm(period.get("end"), f"{name}.effectivePeriod.end"),
        )
    return None, None


# --------------------------------------------------------------------------- OBX / NTE


def _obx(set_id: int, source: Mapping[str, Any], observation: Resource, sub_id: str | None) -> Er7:
    """One OBX from an Observation or one of its components (``source``); status and times
    come from the Observation."""
    element = "Observation" if source is observation else "Observation.component"
    code = cwe(source.get("code"))
    if code is None:
        raise OutboundMappingError(f"the {element} has no code for OBX-3", f"{element}.code")
    status = observation.get("status")
    result_status = _OBSERVATION_STATUS.get(status) if isinstance(status, str) else None
    if result_status is None:
        raise OutboundMappingError(
            "the Observation status has no HL7 v2 result status (table 0085) for OBX-11",
            "Observation.status",
        )
    value_type, value, units = _value(source, element)
    start, _ = _effective(observation, "Observation")
    # OBX-8 is IS in 2.5.1 (a bare table 0078 code; CWE only from 2.7).
    interpretations = [_interpretation(item) for item in objects(source.get("interpretation"))]
    return numbered_segment(
        "OBX",
        {
            1: str(set_id),
            2: value_type,
            3: code,
            4: sub_id,
            5: value,
            6: units,
            7: _reference_range(source),
            8: [item for item in interpretations if item],
            11: result_status,
            14: start,
            17: cwe(observation.get("method")) if source is observation else None,
        },
    )


def _value(source: Mapping[str, Any], element: str) -> tuple[str | None, Part, Er7 | None]:
    """OBX-2 value type, OBX-5 value and OBX-6 units of a value[x]."""
    if isinstance(quantity := source.get("valueQuantity"), Mapping):
        amount = number(quantity.get("value"))
        if amount is None:
            return None, None, None
        comparator = quantity.get("comparator")
        units = _units(quantity)
        if isinstance(comparator, str) and comparator:
            return "SN", composite(comparator, amount), units
        return "NM", amount, units
    if isinstance(string := source.get("valueString"), str):
        if "\n" in string or "\r" in string:
            return "FT", Er7(escape(string, formatted=True)), None
        return ("TX" if len(string) > _ST_LIMIT else "ST"), string, None
    if "valueCodeableConcept" in source:
        concept = cwe(source.get("valueCodeableConcept"))
        return ("CWE", concept, None) if concept else (None, None, None)
    if isinstance(flag := source.get("valueBoolean"), bool):
        return "CWE", composite(*(("Y", "Yes") if flag else ("N", "No")), "HL70136"), None
    if isinstance(integer := source.get("valueInteger"), int) and not isinstance(integer, bool):
        return "NM", str(integer), None
    if "valueDateTime" in source:
        when = source.get("valueDateTime")
        if isinstance(when, str) and "T" not in when:
            return "DT", dt(when, f"{element}.valueDateTime"), None
        return "DTM", dtm(when, f"{element}.valueDateTime"), None
    if isinstance(moment := source.get("valueTime"), str):
        return "TM", moment.replace(":", ""), None
    if isinstance(period := source.get("valuePeriod"), Mapping):
        return (
            "DR",
            composite(
                dtm(period.get("start"), f"{element}.valuePeriod.start"),
                dtm(period.get("end"), f"{element}.valuePeriod.end"),
            ),
            None,
        )
    if isinstance(value_range := source.get("valueRange"), Mapping):
        return _range_value(value_range)
    if isinstance(ratio := source.get("valueRatio"), Mapping):
        numerator = object_(ratio.get("numerator"))
        denominator = object_(ratio.get("denominator"))
        comparator = numerator.get("comparator")
        return (
            "SN",
            composite(
                comparator if isinstance(comparator, str) else None,
                number(numerator.get("value")),
                ":",
                number(denominator.get("value")),
            ),
            _units(numerator),
        )
    for key in source:
        if key.startswith("value") and key[5:6].isupper():
            raise OutboundMappingError(
                f"an Observation {key} has no OBX-5 mapping", f"{element}.{key}"
            )
    return None, None, None


def _range_value(value_range: Mapping[str, Any]) -> tuple[str, Er7, Er7 | None]:
    """SN for a Range: ``^low^-^high``, ``>=^low`` or ``<=^high``."""
    low = object_(value_range.get("low"))
    high = object_(value_range.get("high"))
    low_value, high_value = number(low.get("value")), number(high.get("value"))
    units = _units(low) or _units(high)
    if low_value is not None and high_value is not None:
        return "SN", composite(None, low_value, "-", high_value), units
    if low_value is not None:
        return "SN", composite(">=", low_value), units
    return "SN", composite("<=", high_value), units


def _units(quantity: Mapping[str, Any]) -> Er7 | None:
    """OBX-6 CWE: ``code^unit^UCUM`` (the unit text defaults to the code)."""
    code = text(quantity.get("code"))
    unit = text(quantity.get("unit"))
    system = quantity.get("system")
    if code is None and unit is None:
        return None
    if code is None:
        return composite(None, unit)
    return composite(code, unit or code, system_name(system) if isinstance(system, str) else None)


def _reference_range(source: Mapping[str, Any]) -> str | None:
    """OBX-7 from the first referenceRange: ``low-high``, ``>=low``, ``<=high``, else its
    text."""
    ranges = objects(source.get("referenceRange"))
    if not ranges:
        return None
    first = ranges[0]
    low = object_(first.get("low"))
    high = object_(first.get("high"))
    low_value, high_value = number(low.get("value")), number(high.get("value"))
    if low_value is not None and high_value is not None:
        return f"{low_value}-{high_value}"
    if low_value is not None:
        return f">={low_value}"
    if high_value is not None:
        return f"<={high_value}"
    return text(first.get("text"))


def _interpretation(concept: object) -> str | None:
    """OBX-8 (IS, table 0078) from an interpretation: the code of its v3/v2 coding."""
    for coding in codings(concept):
        if coding.system in _INTERPRETATION_SYSTEMS and coding.code:
            return escape(coding.code)
    return None


def _nte(set_id: int, text: str) -> Er7:
    """NTE with the comment as FT (line breaks as ``\\.br\\``); source L (the filler)."""
    return segment("NTE", str(set_id), "L", Er7(escape(text.strip(), formatted=True)))


def _note_texts(observation: Resource) -> list[str]:
    return [found for note in objects(observation.get("note")) if (found := text(note.get("text")))]
