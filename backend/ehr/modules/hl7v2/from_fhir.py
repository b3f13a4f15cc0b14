"""Outbound HL7 v2.5.1 messages built from FHIR R4 resources (the JSON dicts HAPI returns).

The mapping is the HL7 v2-to-FHIR IG's (segment, datatype and vocabulary maps) read in
reverse; where a FHIR code has several v2 codes the first of the IG's ConceptMap is sent, and
where the IG's v2 code is newer than 2.5.1 the nearest 2.5.1 code is (noted at each table)::

    text = oru_r01(
        patient=patient, report=report, observations=observations, service_request=order,
        sending_application="EHR", sending_facility="HOSP",
        receiving_application="LIS", receiving_facility="LAB",
        control_id=control_id(), timestamp=datetime.now(UTC),
    )
    text = adt_a08(
        patient=patient, encounter=encounter,   # encounter None: PV1|1|N
        sending_application="EHR", sending_facility="HOSP",
        receiving_application="ADT", receiving_facility="HUB",
        control_id=control_id(), timestamp=datetime.now(UTC),
    )

Messages are original acknowledgement mode (MSH-15/16 empty) unless ``accept_ack`` asks for
enhanced mode. Every value is escaped, so nothing from a resource can end a field or a
segment. The text is meant to be sent as UTF-8; MSH-18 says ``UNICODE UTF-8`` when it is not
plain ASCII.

What a required v2 field needs and the resource does not have (no Patient identifier for
PID-3, no DiagnosticReport code for OBR-4, a status with no v2 code…) raises
:class:`OutboundMappingError` naming the FHIR element; its message holds no patient data.

Identifier systems reverse the inbound convention (CX-4 / EI-2..4): ``urn:oid:X`` →
``&X&ISO``, ``urn:uuid:X`` → ``&X&UUID``, ``urn:ehr:hl7v2:NS`` → ``NS`` (a bare namespace),
any other URI → ``&<uri>&URI``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from ehr.fhir.datatypes import codings, concept_text, reference_parts
from ehr.modules.hl7v2.er7 import (
    Er7,
    FieldValue,
    Part,
    composite,
    datetime_to_dtm,
    escape,
    header_segment,
    message,
    numbered_segment,
    segment,
    subcomposite,
    to_dt,
    to_dtm,
)

__all__ = [
    "OUTBOUND_VERSION",
    "OutboundMappingError",
    "adt_a08",
    "oru_r01",
]

OUTBOUND_VERSION: Final = "2.5.1"
LOCAL_NAMESPACE_PREFIX: Final = "urn:ehr:hl7v2:"

Resource = Mapping[str, Any]

_V2_0203: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
_V2_0074: Final = "http://terminology.hl7.org/CodeSystem/v2-0074"
_UCUM: Final = "http://unitsofmeasure.org"
_BIRTH_TIME: Final = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"
_ACK_TYPES: Final = frozenset({"AL", "NE", "ER", "SU"})
_ST_LIMIT: Final = 199  # longer text goes as TX

# FHIR code system → HL7 table 0396 name (CWE.3). Unlisted systems are sent as "L" (local).
_CODING_SYSTEMS: Final[dict[str, str]] = {
    "http://loinc.org": "LN",
    "http://snomed.info/sct": "SCT",
    _UCUM: "UCUM",
    "http://hl7.org/fhir/sid/icd-10-cm": "I10C",
    "http://hl7.org/fhir/sid/icd-10": "I10",
    "http://hl7.org/fhir/sid/icd-9-cm": "I9CDX",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RXNORM",
    "http://hl7.org/fhir/sid/ndc": "NDC",
    "http://hl7.org/fhir/sid/cvx": "CVX",
    "http://www.ama-assn.org/go/cpt": "CPT",
    "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation": "HL70078",
}
_V2_TABLE_PREFIX: Final = "http://terminology.hl7.org/CodeSystem/v2-"

# AdministrativeSex ConceptMap reversed (other ← O, A, N: O).
_SEX: Final = {"male": "M", "female": "F", "other": "O", "unknown": "U"}
# NameType ConceptMap reversed (official ← L, R: L; temp ← NAV, TEMP: TEMP).
_NAME_TYPE: Final = {
    "usual": "D",
    "official": "L",
    "maiden": "M",
    "anonymous": "MSK",
    "nickname": "N",
    "temp": "TEMP",
    "old": "BAD",
}
# AddressType_Use ConceptMap reversed (work ← B, O: B); Address.type postal → M (mailing).
_ADDRESS_USE: Final = {"home": "H", "work": "B", "temp": "C", "old": "BA", "billing": "BI"}
# TelecommunicationUseCode / TelecommunicationEquipmentType ConceptMaps reversed.
_TELECOM_USE: Final = {"home": "PRN", "work": "WPN", "mobile": "PRS"}
_TELECOM_EQUIPMENT: Final = {
    "phone": "PH",
    "fax": "FX",
    "pager": "BP",
    "email": "Internet",
    "url": "Internet",
    "sms": "CP",
}
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


class OutboundMappingError(ValueError):
    """Raised when a resource lacks what a required HL7 v2 field needs, or holds a value
    v2 cannot carry. ``element`` is the FHIR path (``Patient.identifier``); ``reason`` says
    what is missing. Neither holds patient data, so both may be logged."""

    def __init__(self, reason: str, element: str) -> None:
        super().__init__(f"{element}: {reason}")
        self.reason = reason
        self.element = element


# --------------------------------------------------------------------------- messages


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
    timestamp: dt.datetime,
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
    _check_subject(report, patient, "DiagnosticReport.subject")
    for observation in observations:
        _check_subject(observation, patient, "Observation.subject")
    placer = _placer_number(service_request, report)
    filler = _filler_number(report, service_request, sending_application)
    segments: list[Er7] = [_pid(patient)]
    if encounter is not None:
        _check_subject(encounter, patient, "Encounter.subject")
        segments.append(_pv1(encounter))
    segments.append(numbered_segment("ORC", {1: "RE", 2: placer, 3: filler}))
    segments.append(_obr(report, placer, filler))
    conclusion = report.get("conclusion")
    if isinstance(conclusion, str) and conclusion.strip():
        segments.append(_nte(1, conclusion))
    set_id = 0
    for index, observation in enumerate(observations, start=1):
        components = [item for item in _objects(observation.get("component")) if item.get("code")]
        set_id += 1
        segments.append(_obx(set_id, observation, observation, str(index) if components else None))
        for number, note in enumerate(_note_texts(observation), start=1):
            segments.append(_nte(number, note))
        for sub, component in enumerate(components, start=1):
            set_id += 1
            segments.append(_obx(set_id, component, observation, f"{index}.{sub}"))
    msh = _msh(
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
    return message([msh, *segments])


def adt_a08(
    *,
    patient: Resource,
    encounter: Resource | None,
    sending_application: str,
    sending_facility: str,
    receiving_application: str,
    receiving_facility: str,
    control_id: str,
    timestamp: dt.datetime,
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
    segments: list[Er7] = [evn, _pid(patient)]
    if encounter is None:
        segments.append(segment("PV1", "1", "N"))
    else:
        _check_subject(encounter, patient, "Encounter.subject")
        segments.append(_pv1(encounter))
    msh = _msh(
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
    return message([msh, *segments])


def _msh(
    message_type: Er7,
    segments: Sequence[str],
    *,
    sending_application: str,
    sending_facility: str,
    receiving_application: str,
    receiving_facility: str,
    control_id: str,
    timestamp: dt.datetime,
    processing_id: str,
    accept_ack: str | None,
    application_ack: str | None,
) -> Er7:
    if not control_id or len(control_id) > 20:
        raise ValueError("control_id must be 1 to 20 characters")
    for value in (accept_ack, application_ack):
        if value is not None and value not in _ACK_TYPES:
            raise ValueError(f"{value!r} is not an acknowledgement type (table 0155)")
    if application_ack is not None and accept_ack is None:
        raise ValueError("application_ack needs accept_ack (enhanced mode)")
    fields: dict[int, FieldValue] = {
        3: sending_application,
        4: sending_facility,
        5: receiving_application,
        6: receiving_facility,
        7: datetime_to_dtm(timestamp),
        9: message_type,
        10: control_id,
        11: processing_id,
        12: OUTBOUND_VERSION,
    }
    if accept_ack is not None:
        fields[15] = accept_ack
        fields[16] = application_ack or "NE"
    names = (sending_application, sending_facility, receiving_application, receiving_facility)
    if not all(text.isascii() for text in (*segments, *names)):
        fields[18] = "UNICODE UTF-8"
    return header_segment(fields)


# --------------------------------------------------------------------------- PID


def _pid(patient: Resource) -> Er7:
    identifiers = [cx for item in _objects(patient.get("identifier")) if (cx := _cx(item))]
    if not identifiers:
        raise OutboundMappingError(
            "the Patient has no identifier with a value for PID-3", "Patient.identifier"
        )
    names = [xpn for item in _objects(patient.get("name")) if (xpn := _xpn(item))]
    if not names:
        raise OutboundMappingError(
            "the Patient has no name with a family or given part for PID-5", "Patient.name"
        )
    home: list[Part] = []
    business: list[Part] = []
    for item in _objects(patient.get("telecom")):
        xtn = _xtn(item)
        if xtn:
            (business if item.get("use") == "work" else home).append(xtn)
    deceased_at = patient.get("deceasedDateTime")
    deceased = patient.get("deceasedBoolean")
    gender = patient.get("gender")
    fields: dict[int, FieldValue] = {
        1: "1",
        3: identifiers,
        5: names,
        7: _birth(patient),
        8: _SEX.get(gender) if isinstance(gender, str) else None,
        11: [xad for item in _objects(patient.get("address")) if (xad := _xad(item))],
        13: home,
        14: business,
        29: _dtm(deceased_at, "Patient.deceasedDateTime"),
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
        for extension in _objects(primitive.get("extension")):
            if extension.get("url") == _BIRTH_TIME and extension.get("valueDateTime"):
                return _dtm(extension.get("valueDateTime"), "Patient.birthDate.extension")
    return _dt(birth_date, "Patient.birthDate")


def _cx(identifier: Mapping[str, Any]) -> Er7 | None:
    """CX: ID ^^^ assigning authority (HD as subcomponents) ^ type ^^ effective ^ expiry."""
    value = identifier.get("value")
    if not isinstance(value, str) or not value.strip():
        return None
    namespace, universal_id, universal_type = _authority(identifier.get("system"))
    period = identifier.get("period")
    start = period.get("start") if isinstance(period, Mapping) else None
    end = period.get("end") if isinstance(period, Mapping) else None
    return composite(
        value,
        None,
        None,
        subcomposite(namespace, universal_id, universal_type),
        _identifier_type(identifier),
        None,
        _dt(start, "Identifier.period.start"),
        _dt(end, "Identifier.period.end"),
    )


# FHIR systems of national registries → the HD US feeds send for them (namespace and OID).
_WELL_KNOWN_AUTHORITIES: Final[dict[str, tuple[str | None, str | None, str | None]]] = {
    "http://hl7.org/fhir/sid/us-npi": ("NPI", "2.16.840.1.113883.4.6", "ISO"),
    "http://hl7.org/fhir/sid/us-ssn": ("SSA", "2.16.840.1.113883.4.1", "ISO"),
}


def _authority(system: object) -> tuple[str | None, str | None, str | None]:
    """The HD (namespace, universal id, universal id type) an Identifier.system names."""
    if not isinstance(system, str) or not system.strip():
        return None, None, None
    system = system.strip()
    if system in _WELL_KNOWN_AUTHORITIES:
        return _WELL_KNOWN_AUTHORITIES[system]
    if system.startswith(LOCAL_NAMESPACE_PREFIX):
        return system.removeprefix(LOCAL_NAMESPACE_PREFIX), None, None
    if system.startswith("urn:oid:"):
        return None, system.removeprefix("urn:oid:"), "ISO"
    if system.startswith("urn:uuid:"):
        return None, system.removeprefix("urn:uuid:"), "UUID"
    return None, system, "URI"


def _identifier_type(identifier: Mapping[str, Any]) -> str | None:
    for coding in codings(identifier.get("type")):
        if coding.system == _V2_0203:
            return coding.code
    return None


def _has_type(identifier: Mapping[str, Any], code: str) -> bool:
    return _identifier_type(identifier) == code


def _xpn(name: Mapping[str, Any]) -> Er7 | None:
    """XPN: family ^ given ^ further given ^ suffix ^ prefix ^ degree ^ type … ^ effective ^
    expiry ^ professional suffix (the IG's XPN map: suffix[1..3] ← XPN.4, .6, .14)."""
    family = name.get("family") if isinstance(name.get("family"), str) else None
    given = _strings(name.get("given"))
    if not family and not given:
        return None
    prefixes = _strings(name.get("prefix"))
    suffixes = _strings(name.get("suffix"))
    use = name.get("use")
    period = _object(name.get("period"))
    return composite(
        family,
        given[0] if given else None,
        " ".join(given[1:]) or None,
        suffixes[0] if suffixes else None,
        " ".join(prefixes) or None,
        suffixes[1] if len(suffixes) > 1 else None,
        _NAME_TYPE.get(use) if isinstance(use, str) else None,
        None,
        None,
        None,
        None,
        _dtm(period.get("start"), "HumanName.period.start"),
        _dtm(period.get("end"), "HumanName.period.end"),
        " ".join(suffixes[2:]) or None,
    )


def _xad(address: Mapping[str, Any]) -> Er7 | None:
    """XAD: street (line 1) ^ other designation (further lines) ^ city ^ state ^ postal code
    ^ country ^ type ^^ county ^^^^ effective ^ expiry."""
    lines = _strings(address.get("line"))
    parts = [_text(address.get(key)) for key in ("city", "state", "postalCode", "country")]
    district = _text(address.get("district"))
    if not lines and not any(parts) and not district:
        return None
    use = address.get("use")
    address_type = _ADDRESS_USE.get(use) if isinstance(use, str) else None
    if address_type is None and address.get("type") == "postal":
        address_type = "M"
    period = _object(address.get("period"))
    return composite(
        lines[0] if lines else None,
        ", ".join(lines[1:]) or None,
        *parts,
        address_type,
        None,
        district,
        None,
        None,
        None,
        _dtm(period.get("start"), "Address.period.start"),
        _dtm(period.get("end"), "Address.period.end"),
    )


def _xtn(contact: Mapping[str, Any]) -> Er7 | None:
    """XTN: a number in XTN.1, an e-mail or URL in XTN.4 (equipment ``Internet``), use code,
    equipment type, effective/expiry (XTN.13/14), preference order (XTN.18)."""
    value = _text(contact.get("value"))
    if value is None:
        return None
    system = contact.get("system")
    use = contact.get("use")
    equipment = _TELECOM_EQUIPMENT.get(system) if isinstance(system, str) else None
    if equipment == "PH" and use == "mobile":
        equipment = "CP"
    use_code = _TELECOM_USE.get(use) if isinstance(use, str) else None
    internet = equipment == "Internet"
    if internet:
        use_code = "NET"
    period = _object(contact.get("period"))
    rank = contact.get("rank")
    return composite(
        None if internet else value,
        use_code,
        equipment,
        value if internet else None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        _dtm(period.get("start"), "ContactPoint.period.start"),
        _dtm(period.get("end"), "ContactPoint.period.end"),
        None,
        None,
        None,
        str(rank) if isinstance(rank, int) and not isinstance(rank, bool) else None,
    )


# --------------------------------------------------------------------------- PV1


def _pv1(encounter: Resource) -> Er7:
    """PV1: set id, patient class (Encounter.class), visit number (PV1-19), admit and
    discharge times (Encounter.period)."""
    encounter_class = encounter.get("class")
    code = encounter_class.get("code") if isinstance(encounter_class, Mapping) else None
    visits = [item for item in _objects(encounter.get("identifier")) if _cx(item)]
    visit = next((item for item in visits if _has_type(item, "VN")), None)
    if visit is None and visits:
        visit = visits[0]
    period = _object(encounter.get("period"))
    return numbered_segment(
        "PV1",
        {
            1: "1",
            2: _PATIENT_CLASS.get(code, "U") if isinstance(code, str) else "U",
            19: _cx(visit) if visit is not None else None,
            44: _dtm(period.get("start"), "Encounter.period.start"),
            45: _dtm(period.get("end"), "Encounter.period.end"),
        },
    )


# --------------------------------------------------------------------------- ORC / OBR


def _placer_number(service_request: Resource | None, report: Resource) -> Er7 | None:
    """OBR-2/ORC-2: a PLAC identifier of the order, else of the report, else the order's
    first identifier without a type."""
    order_ids = _objects(service_request.get("identifier")) if service_request else []
    for item in [*order_ids, *_objects(report.get("identifier"))]:
        if _has_type(item, "PLAC") and (ei := _ei(item)):
            return ei
    for item in order_ids:
        if _identifier_type(item) is None and (ei := _ei(item)):
            return ei
    return None


def _filler_number(
    report: Resource, service_request: Resource | None, sending_application: str
) -> Er7:
    """OBR-3/ORC-3: a FILL identifier of the report, else of the order, else the report's
    first identifier without a type, else the report's id under our namespace (we are the
    filler of what we send)."""
    report_ids = _objects(report.get("identifier"))
    order_ids = _objects(service_request.get("identifier")) if service_request else []
    for item in [*report_ids, *order_ids]:
        if _has_type(item, "FILL") and (ei := _ei(item)):
            return ei
    for item in report_ids:
        if _identifier_type(item) is None and (ei := _ei(item)):
            return ei
    report_id = report.get("id")
    if isinstance(report_id, str) and report_id:
        return composite(report_id, sending_application)
    raise OutboundMappingError(
        "the DiagnosticReport has no filler identifier and no id for OBR-3",
        "DiagnosticReport.identifier",
    )


def _ei(identifier: Mapping[str, Any]) -> Er7 | None:
    value = identifier.get("value")
    if not isinstance(value, str) or not value.strip():
        return None
    return composite(value, *_authority(identifier.get("system")))


def _obr(report: Resource, placer: Er7 | None, filler: Er7) -> Er7:
    service = _cwe(report.get("code"))
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
            for category in _objects(report.get("category"))
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
            22: _dtm(report.get("issued"), "DiagnosticReport.issued"),
            24: section,
            25: result_status,
        },
    )


# --------------------------------------------------------------------------- OBX / NTE


def _obx(set_id: int, source: Mapping[str, Any], observation: Resource, sub_id: str | None) -> Er7:
    """One OBX from an Observation or one of its components (``source``); status and times
    come from the Observation."""
    element = "Observation" if source is observation else "Observation.component"
    code = _cwe(source.get("code"))
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
    interpretations = [_interpretation(item) for item in _objects(source.get("interpretation"))]
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
            17: _cwe(observation.get("method")) if source is observation else None,
        },
    )


def _value(source: Mapping[str, Any], element: str) -> tuple[str | None, Part, Er7 | None]:
    """OBX-2 value type, OBX-5 value and OBX-6 units of a value[x]."""
    if isinstance(quantity := source.get("valueQuantity"), Mapping):
        number = _number(quantity.get("value"))
        if number is None:
            return None, None, None
        comparator = quantity.get("comparator")
        units = _units(quantity)
        if isinstance(comparator, str) and comparator:
            return "SN", composite(comparator, number), units
        return "NM", number, units
    if isinstance(text := source.get("valueString"), str):
        if "\n" in text or "\r" in text:
            return "FT", Er7(escape(text, formatted=True)), None
        return ("TX" if len(text) > _ST_LIMIT else "ST"), text, None
    if "valueCodeableConcept" in source:
        concept = _cwe(source.get("valueCodeableConcept"))
        return ("CWE", concept, None) if concept else (None, None, None)
    if isinstance(flag := source.get("valueBoolean"), bool):
        return "CWE", composite(*(("Y", "Yes") if flag else ("N", "No")), "HL70136"), None
    if isinstance(integer := source.get("valueInteger"), int) and not isinstance(integer, bool):
        return "NM", str(integer), None
    if "valueDateTime" in source:
        when = source.get("valueDateTime")
        if isinstance(when, str) and "T" not in when:
            return "DT", _dt(when, f"{element}.valueDateTime"), None
        return "DTM", _dtm(when, f"{element}.valueDateTime"), None
    if isinstance(moment := source.get("valueTime"), str):
        return "TM", moment.replace(":", ""), None
    if isinstance(period := source.get("valuePeriod"), Mapping):
        return (
            "DR",
            composite(
                _dtm(period.get("start"), f"{element}.valuePeriod.start"),
                _dtm(period.get("end"), f"{element}.valuePeriod.end"),
            ),
            None,
        )
    if isinstance(value_range := source.get("valueRange"), Mapping):
        return _range_value(value_range)
    if isinstance(ratio := source.get("valueRatio"), Mapping):
        numerator = _object(ratio.get("numerator"))
        denominator = _object(ratio.get("denominator"))
        comparator = numerator.get("comparator")
        return (
            "SN",
            composite(
                comparator if isinstance(comparator, str) else None,
                _number(numerator.get("value")),
                ":",
                _number(denominator.get("value")),
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
    low = _object(value_range.get("low"))
    high = _object(value_range.get("high"))
    low_value, high_value = _number(low.get("value")), _number(high.get("value"))
    units = _units(low) or _units(high)
    if low_value is not None and high_value is not None:
        return "SN", composite(None, low_value, "-", high_value), units
    if low_value is not None:
        return "SN", composite(">=", low_value), units
    return "SN", composite("<=", high_value), units


def _units(quantity: Mapping[str, Any]) -> Er7 | None:
    """OBX-6 CWE: ``code^unit^UCUM`` (the unit text defaults to the code)."""
    code = _text(quantity.get("code"))
    unit = _text(quantity.get("unit"))
    system = quantity.get("system")
    if code is None and unit is None:
        return None
    if code is None:
        return composite(None, unit)
    return composite(code, unit or code, _system_name(system) if isinstance(system, str) else None)


def _reference_range(source: Mapping[str, Any]) -> str | None:
    """OBX-7 from the first referenceRange: ``low-high``, ``>=low``, ``<=high``, else its
    text."""
    ranges = _objects(source.get("referenceRange"))
    if not ranges:
        return None
    first = ranges[0]
    low = _object(first.get("low"))
    high = _object(first.get("high"))
    low_value, high_value = _number(low.get("value")), _number(high.get("value"))
    if low_value is not None and high_value is not None:
        return f"{low_value}-{high_value}"
    if low_value is not None:
        return f">={low_value}"
    if high_value is not None:
        return f"<={high_value}"
    return _text(first.get("text"))


def _nte(set_id: int, text: str) -> Er7:
    """NTE with the comment as FT (line breaks as ``\\.br\\``); source L (the filler)."""
    return segment("NTE", str(set_id), "L", Er7(escape(text.strip(), formatted=True)))


def _note_texts(observation: Resource) -> list[str]:
    return [text for note in _objects(observation.get("note")) if (text := _text(note.get("text")))]


# --------------------------------------------------------------------------- datatypes


_INTERPRETATION_SYSTEMS: Final = frozenset(
    {
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
        "http://terminology.hl7.org/CodeSystem/v2-0078",
    }
)


def _interpretation(concept: object) -> str | None:
    """OBX-8 (IS, table 0078) from an interpretation: the code of its v3/v2 coding."""
    for coding in codings(concept):
        if coding.system in _INTERPRETATION_SYSTEMS and coding.code:
            return escape(coding.code)
    return None


def _cwe(concept: object) -> Er7 | None:
    """CWE from a CodeableConcept: first coding in CWE.1-3, second in CWE.4-6, text in
    CWE.9 (the IG's CWE map)."""
    found = codings(concept, limit=2)
    text = concept_text(concept)
    if not found and text is None:
        return None
    parts: list[Part] = []
    for coding in found:
        parts += [coding.code, coding.display, _system_name(coding.system)]
    parts += [None] * (8 - len(parts))
    parts.append(text)
    return composite(*parts)


def _system_name(system: str | None) -> str | None:
    """The HL7 table 0396 name of a FHIR code system (``L`` for one it does not list)."""
    if system is None:
        return None
    if system in _CODING_SYSTEMS:
        return _CODING_SYSTEMS[system]
    if system.startswith(_V2_TABLE_PREFIX):
        return "HL7" + system.removeprefix(_V2_TABLE_PREFIX)
    if system.startswith(LOCAL_NAMESPACE_PREFIX):
        return system.removeprefix(LOCAL_NAMESPACE_PREFIX)
    return "L"


def _number(value: object) -> str | None:
    """A FHIR decimal as NM text, never in exponent form."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    return format(number, "f")


def _effective(resource: Resource, name: str) -> tuple[str | None, str | None]:
    """effective[x] as (start, end) DTMs."""
    if "effectiveDateTime" in resource:
        return _dtm(resource.get("effectiveDateTime"), f"{name}.effectiveDateTime"), None
    if "effectiveInstant" in resource:
        return _dtm(resource.get("effectiveInstant"), f"{name}.effectiveInstant"), None
    period = resource.get("effectivePeriod")
    if isinstance(period, Mapping):
        return (
            _dtm(period.get("start"), f"{name}.effectivePeriod.start"),
            _dtm(period.get("end"), f"{name}.effectivePeriod.end"),
        )
    return None, None


def _dtm(value: object, element: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise OutboundMappingError("not a FHIR dateTime", element)
    try:
        return to_dtm(value)
    except ValueError:
        raise OutboundMappingError("not a FHIR dateTime", element) from None


def _dt(value: object, element: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise OutboundMappingError("not a FHIR date", element)
    try:
        return to_dt(value)
    except ValueError:
        raise OutboundMappingError("not a FHIR date", element) from None


def _meta_last_updated(resource: Resource) -> str | None:
    meta = resource.get("meta")
    updated = meta.get("lastUpdated") if isinstance(meta, Mapping) else None
    return _dtm(updated, "Patient.meta.lastUpdated") if isinstance(updated, str) else None


def _check_subject(resource: Resource, patient: Resource, element: str) -> None:
    """Refuse a resource whose subject is, by reference, another Patient."""
    subject = reference_parts(resource.get("subject"))
    patient_id = patient.get("id")
    if (
        subject is not None
        and subject.resource_type == "Patient"
        and isinstance(patient_id, str)
        and subject.resource_id != patient_id
    ):
        raise OutboundMappingError("refers to another Patient than the one given", element)


def _object(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _objects(value: object) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _strings(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item.strip() for item in value if isinstance(item, str) and item.strip()]


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None
