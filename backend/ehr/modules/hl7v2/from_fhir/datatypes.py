"""FHIR datatypes as HL7 v2.5.1 datatypes, for the outbound messages: CX and EI (identifiers),
XPN, XAD and XTN (names, addresses, telecoms), CWE (codes), DTM and DT (times), NM (numbers);
the code-system and table maps they use; :class:`OutboundMappingError`; and the small readers
of resource values (``object_``, ``objects``, ``text``) the segment builders share.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from ehr.fhir.datatypes import codings, concept_text, reference_parts
from ehr.modules.hl7v2.er7 import Er7, Part, composite, subcomposite, to_dt, to_dtm

__all__ = [
    "LOCAL_NAMESPACE_PREFIX",
    "OutboundMappingError",
    "Resource",
    "check_subject",
    "cwe",
    "cx",
    "dt",
    "dtm",
    "ei",
    "has_type",
    "identifier_type",
    "number",
    "object_",
    "objects",
    "system_name",
    "text",
    "xad",
    "xpn",
    "xtn",
]

LOCAL_NAMESPACE_PREFIX: Final = "urn:ehr:hl7v2:"

Resource = Mapping[str, Any]

_V2_0203: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
_UCUM: Final = "http://unitsofmeasure.org"

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


class OutboundMappingError(ValueError):
    """Raised when a resource lacks what a required HL7 v2 field needs, or holds a value
    v2 cannot carry. ``element`` is the FHIR path (``Patient.identifier``); ``reason`` says
    what is missing. Neither holds patient data, so both may be logged."""

    def __init__(self, reason: str, element: str) -> None:
        super().__init__(f"{element}: {reason}")
        self.reason = reason
        self.element = element


# --------------------------------------------------------------------------- CX / EI


def cx(identifier: Mapping[str, Any]) -> Er7 | None:
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
        identifier_type(identifier),
        None,
        dt(start, "Identifier.period.start"),
        dt(end, "Identifier.period.end"),
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


def identifier_type(identifier: Mapping[str, Any]) -> str | None:
    for coding in codings(identifier.get("type")):
        if coding.system == _V2_0203:
            return coding.code
    return None


def has_type(identifier: Mapping[str, Any], code: str) -> bool:
    return identifier_type(identifier) == code


def ei(identifier: Mapping[str, Any]) -> Er7 | None:
    value = identifier.get("value")
    if not isinstance(value, str) or not value.strip():
        return None
    return composite(value, *_authority(identifier.get("system")))


# --------------------------------------------------------------------------- XPN / XAD / XTN


def xpn(name: Mapping[str, Any]) -> Er7 | None:
    """XPN: family ^ given ^ further given ^ suffix ^ prefix ^ degree ^ type … ^ effective ^
    expiry ^ professional suffix (the IG's XPN map: suffix[1..3] ← XPN.4, .6, .14)."""
    family = name.get("family") if isinstance(name.get("family"), str) else None
    given = _strings(name.get("given"))
    if not family and not given:
        return None
    prefixes = _strings(name.get("prefix"))
    suffixes = _strings(name.get("suffix"))
    use = name.get("use")
    period = object_(name.get("period"))
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
        dtm(period.get("start"), "HumanName.period.start"),
        dtm(period.get("end"), "HumanName.period.end"),
        " ".join(suffixes[2:]) or None,
    )


def xad(address: Mapping[str, Any]) -> Er7 | None:
    """XAD: street (line 1) ^ other designation (further lines) ^ city ^ state ^ postal code
    ^ country ^ type ^^ county ^^^^ effective ^ expiry."""
    lines = _strings(address.get("line"))
    parts = [text(address.get(key)) for key in ("city", "state", "postalCode", "country")]
    district = text(address.get("district"))
    if not lines and not any(parts) and not district:
        return None
    use = address.get("use")
    address_type = _ADDRESS_USE.get(use) if isinstance(use, str) else None
    if address_type is None and address.get("type") == "postal":
        address_type = "M"
    period = object_(address.get("period"))
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
        dtm(period.get("start"), "Address.period.start"),
        dtm(period.get("end"), "Address.period.end"),
    )


def xtn(contact: Mapping[str, Any]) -> Er7 | None:
    """XTN: a number in XTN.1, an e-mail or URL in XTN.4 (equipment ``Internet``), use code,
    equipment type, effective/expiry (XTN.13/14), preference order (XTN.18)."""
    value = text(contact.get("value"))
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
    period = object_(contact.get("period"))
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
        dtm(period.get("start"), "ContactPoint.period.start"),
        dtm(period.get("end"), "ContactPoint.period.end"),
        None,
        None,
        None,
        str(rank) if isinstance(rank, int) and not isinstance(rank, bool) else None,
    )


# --------------------------------------------------------------------------- CWE / NM / DTM / DT


def cwe(concept: object) -> Er7 | None:
    """CWE from a CodeableConcept: first coding in CWE.1-3, second in CWE.4-6, text in
    CWE.9 (the IG's CWE map)."""
    found = codings(concept, limit=2)
    text = concept_text(concept)
    if not found and text is None:
        return None
    parts: list[Part] = []
    for coding in found:
        parts += [coding.code, coding.display, system_name(coding.system)]
    parts += [None] * (8 - len(parts))
    parts.append(text)
    return composite(*parts)


def system_name(system: str | None) -> str | None:
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


def number(value: object) -> str | None:
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


def dtm(value: object, element: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise OutboundMappingError("not a FHIR dateTime", element)
    try:
        return to_dtm(value)
    except ValueError:
        raise OutboundMappingError("not a FHIR dateTime", element) from None


def dt(value: object, element: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise OutboundMappingError("not a FHIR date", element)
    try:
        return to_dt(value)
    except ValueError:
        raise OutboundMappingError("not a FHIR date", element) from None


# --------------------------------------------------------------------------- resource values


def check_subject(resource: Resource, patient: Resource, element: str) -> None:
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


def object_(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def objects(value: object) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _strings(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item.strip() for item in value if isinstance(item, str) and item.strip()]


def text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None
