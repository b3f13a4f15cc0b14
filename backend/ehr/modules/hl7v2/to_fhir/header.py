"""MSH -> MessageHeader and Provenance of the conversion (IG MSH[MessageHeader],
MSH[Provenance-Source]), each written by a conditional update on the tag
``urn:ehr:hl7v2:message|v2-<message_id>`` (our HAPI assigns ids itself), so a replay of an inbox
row updates them.

MessageHeader: eventCoding from MSH-9 (v2-0003), source from MSH-3 (name; endpoint from its
universal id when it is an ISO/UUID/DNS/URI, else data-absent ``unknown`` as the IG says),
sender MSH-4 and destination MSH-5/MSH-6 as names, focus -> the message's main resources.

Provenance: target -> every other entry, recorded = received_at, activity v3-DataOperation
UPDATE, agent = the sending application (``who.display``), entity ``source`` whose
``what.identifier`` is the control id MSH-10 under ``urn:ehr:hl7v2:control-id:<MSH-3.1>``.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote

from ehr.modules.hl7v2.parsing import Segment
from ehr.modules.hl7v2.to_fhir.assembly import Assembly, Resource
from ehr.modules.hl7v2.to_fhir.fields import value

__all__ = ["control_id_system", "message_header", "provenance"]

_ABSENT: Final = {
    "extension": [
        {
            "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
            "valueCode": "unknown",
        }
    ]
}


def control_id_system(msh: Segment) -> str:
    """``urn:ehr:hl7v2:control-id:<sender>``: the sender is MSH-3.1 (else its universal id)."""
    sender = value(msh, 3, 1) or value(msh, 3, 2) or "unknown-sender"
    return f"urn:ehr:hl7v2:control-id:{quote(sender, safe='')}"


def _endpoint(msh: Segment, field_no: int) -> str | None:
    universal, kind = value(msh, field_no, 2), value(msh, field_no, 3).upper()
    if not universal:
        return None
    return {
        "ISO": f"urn:oid:{universal}",
        "UUID": f"urn:uuid:{universal}",
        "DNS": f"urn:dns:{universal}",
        "URI": universal,
    }.get(kind)


def _narrative(text: str) -> Resource:
    return {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{html.escape(text)}</div>',
    }


def _endpointed(name: str, endpoint: str | None) -> Resource:
    element: Resource = {"name": name}
    if endpoint:
        element["endpoint"] = endpoint
    else:
        element["_endpoint"] = _ABSENT
    return element


def message_header(assembly: Assembly) -> str:
    """Write the MessageHeader of the message; returns its placeholder."""
    msh, header, context = assembly.msh, assembly.message.header, assembly.context
    message_type = "^".join(
        part for part in (header.message_type, header.trigger_event, header.structure) if part
    )
    source = _endpointed(value(msh, 3, 1), _endpoint(msh, 3))
    destination = (
        [_endpointed(value(msh, 5, 1) or value(msh, 6, 1), _endpoint(msh, 5))]
        if value(msh, 5) or value(msh, 6)
        else []
    )
    resource: Resource = {
        "text": _narrative(
            f"HL7 v2 {message_type} message {header.control_id} for tenant {context.tenant}"
        ),
        "eventCoding": {
            "system": "http://terminology.hl7.org/CodeSystem/v2-0003",
            "code": header.trigger_event or header.message_type,
            "display": message_type,
        },
        "destination": destination,
        "sender": {"display": value(msh, 4, 1)} if value(msh, 4, 1) else None,
        "source": source,
        "focus": [{"reference": full_url} for full_url in assembly.focus],
    }
    return assembly.put_with_id("MessageHeader", f"v2-{context.message_id}", resource)


def provenance(assembly: Assembly) -> str:
    """Write the Provenance of everything the message wrote; call it last."""
    msh, header, context = assembly.msh, assembly.message.header, assembly.context
    received = (
        context.received_at.astimezone(UTC)
        if context.received_at.tzinfo
        else (context.received_at.replace(tzinfo=UTC))
    )
    sender = value(msh, 3, 1) or value(msh, 3, 2) or "unknown sending application"
    resource: Resource = {
        "text": _narrative(
            f"Converted from HL7 v2 message {header.control_id} for tenant {context.tenant}"
        ),
        "target": [{"reference": full_url} for full_url in assembly.full_urls()],
        "recorded": _instant(received),
        "activity": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                    "code": "UPDATE",
                    "display": "revise",
                }
            ]
        },
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "author",
                        }
                    ]
                },
                "who": {"display": sender},
            }
        ],
        "entity": [
            {
                "role": "source",
                "what": {
                    "identifier": {"system": control_id_system(msh), "value": header.control_id},
                    "display": f"HL7 v2 {header.message_type}^{header.trigger_event}",
                },
            }
        ],
    }
    return assembly.put_with_id("Provenance", f"v2-{context.message_id}", resource)


def _instant(moment: datetime) -> str:
    text = moment.isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")
