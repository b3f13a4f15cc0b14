"""Builders for the HL7 v2 -> FHIR conversion tests (no tests here).

    msg = message(msh("ADT^A01"), pid({8: "M"}), pv1())
    conversion = convert(msg)
    patient = resource_of(conversion, "Patient")

``segment("PV1", {2: "I", 19: "V100"})`` writes any segment from field number -> ER7 text.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ehr.modules.hl7v2.parsing import Message, parse_message
from ehr.modules.hl7v2.to_fhir import Conversion, ConversionContext, to_transaction

MESSAGE_ID = "5f0c6f1e2d3b4a5968778695a4b3c2d1"
RECEIVED_AT = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


def segment(name: str, fields: Mapping[int, str]) -> str:
    """One ER7 segment with the given fields (1-based HL7 numbers), the rest empty."""
    last = max(fields, default=0)
    return "|".join([name, *(fields.get(number, "") for number in range(1, last + 1))])


def msh(
    event: str = "ADT^A01",
    *,
    sending_application: str = "REG",
    sending_facility: str = "GOODHEALTH",
    timestamp: str = "20250101120000-0500",
    control_id: str = "CTRL0001",
    version: str = "2.5.1",
) -> str:
    return (
        f"MSH|^~\\&|{sending_application}|{sending_facility}|EHR|EHRFAC|{timestamp}||{event}|"
        f"{control_id}|P|{version}"
    )


def pid(overrides: Mapping[int, str] | None = None) -> str:
    fields = {
        1: "1",
        3: "MRN123^^^HOSP&1.2.840.114350&ISO^MR~999-88-7777^^^SSA^SS",
        5: "DOE^JANE^Q^^DR^^L~SMITH^JANE^^^^^M",
        7: "19800215",
        8: "F",
        11: "1 MAIN ST^APT 2^SPRINGFIELD^IL^62701^USA^H",
        13: "^PRN^PH^^1^217^5551234~^NET^Internet^jane@example.org",
        14: "(217)555-9999",
        16: "M",
    }
    fields.update(overrides or {})
    return segment("PID", fields)


def pv1(overrides: Mapping[int, str] | None = None) -> str:
    fields = {
        1: "1",
        2: "I",
        3: "4N^401^A^GOODHEALTH",
        7: "1234^WELBY^MARCUS^^^DR^^^NPI&2.16.840.1.113883.4.6&ISO",
        19: "V100^^^GOODHEALTH&2.16.840.1.113883.3.999&ISO^VN",
        44: "20250101100000",
    }
    fields.update(overrides or {})
    return segment("PV1", fields)


def message(*segments: str) -> Message:
    return parse_message("\r".join(segments))


def convert(msg: Message, *, message_id: str = MESSAGE_ID) -> Conversion:
    return to_transaction(
        msg, ConversionContext(message_id=message_id, received_at=RECEIVED_AT, tenant="acme")
    )


def entries(conversion: Conversion, resource_type: str | None = None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = conversion.bundle["entry"]
    if resource_type is None:
        return found
    return [entry for entry in found if entry["resource"]["resourceType"] == resource_type]


def resource_of(conversion: Conversion, resource_type: str) -> dict[str, Any]:
    """The single resource of a type in the bundle (fails if there is not exactly one)."""
    found = entries(conversion, resource_type)
    assert len(found) == 1, f"{len(found)} {resource_type} entries"
    resource: dict[str, Any] = found[0]["resource"]
    return resource


def entry_of(conversion: Conversion, resource_type: str) -> dict[str, Any]:
    found = entries(conversion, resource_type)
    assert len(found) == 1, f"{len(found)} {resource_type} entries"
    return found[0]


def empties(element: Any, path: str = "$") -> list[str]:
    """Paths of empty strings, lists, objects or None anywhere in ``element``."""
    if element is None or element == "" or element == [] or element == {}:
        return [path]
    if isinstance(element, str) and not element.strip():
        return [path]
    if isinstance(element, dict):
        return [found for key, item in element.items() for found in empties(item, f"{path}.{key}")]
    if isinstance(element, list):
        return [found for i, item in enumerate(element) for found in empties(item, f"{path}[{i}]")]
    return []
