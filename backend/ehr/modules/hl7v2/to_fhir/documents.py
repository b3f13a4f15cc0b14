"""TXA + OBX -> DocumentReference (IG segment maps TXA[DocumentReference],
OBX[DocumentReference], datatype ED[DocumentReference]) for MDM T02.

Key: the unique document number TXA-12 (also ``masterIdentifier``), else the unique document
file name TXA-16 under the sender's system.

Content: each ED repetition is an attachment as sent (Base64 checked); the text OBX (TX, ST,
FT) make one ``text/plain; charset=utf-8`` attachment, their repetitions and segments as lines
(the IG's ``application/text`` / ``text/hl7v2`` are not registered media types); an RP is an
attachment by URL. A T02 without content is refused.

Status from TXA-19 availability: AV or absent -> ``current``, OB (obsolete) -> ``superseded``,
CA (cancelled) -> ``entered-in-error``, UN (unavailable) -> ``current``. docStatus from TXA-17:
DI/DO/IN/IP/PA -> ``preliminary``, AU/LA -> ``final``.
"""

from __future__ import annotations

import base64
from typing import Final

from ehr.modules.hl7v2.parsing import Message
from ehr.modules.hl7v2.to_fhir.assembly import Assembly, Resource
from ehr.modules.hl7v2.to_fhir.conversion import ConversionError
from ehr.modules.hl7v2.to_fhir.datatypes import (
    codeable_concept,
    identifier_from_ei,
    mapped,
    practitioner_reference,
)
from ehr.modules.hl7v2.to_fhir.fields import repetitions, value
from ehr.modules.hl7v2.to_fhir.notes import formatted_text
from ehr.modules.hl7v2.to_fhir.patient import PatientRef
from ehr.modules.hl7v2.to_fhir.results import attachment
from ehr.modules.hl7v2.to_fhir.vocabulary import DOCUMENT_CONFIDENTIALITY

__all__ = ["document_reference", "document_status"]

_STATUS: Final[dict[str, str]] = {
    "": "current",
    "AV": "current",
    "UN": "current",
    "OB": "superseded",
    "CA": "entered-in-error",
}
_DOC_STATUS: Final[dict[str, str]] = {
    "DI": "preliminary",
    "DO": "preliminary",
    "IN": "preliminary",
    "IP": "preliminary",
    "PA": "preliminary",
    "AU": "final",
    "LA": "final",
}


def document_status(availability: str) -> str:
    """DocumentReference.status of TXA-19 (see the module docstring)."""
    return _STATUS.get(availability.strip().upper(), "current")


def document_reference(
    message: Message, patient_ref: PatientRef, encounter: str | None, assembly: Assembly
) -> str:
    """Write the DocumentReference of an MDM T02; returns its placeholder."""
    txa = message.first("TXA")
    if txa is None:
        raise ConversionError("the message has no TXA segment", "TXA")
    master = identifier_from_ei(txa.first(12), assembly, "TXA-12") if txa.first(12) else None
    file_name = value(txa, 16)
    file_identifier = (
        {"system": assembly.default_system("TXA-16"), "value": file_name} if file_name else None
    )
    key = master or file_identifier
    if key is None:
        raise ConversionError("no unique document number", "TXA-12")

    content: list[Resource] = []
    lines: list[str] = []
    for obx in message.segments("OBX"):
        kind = value(obx, 2).upper()
        reps = repetitions(obx, 5)
        if kind == "ED":
            content.extend(
                {"attachment": found} for rep in reps if (found := attachment(rep, "OBX-5"))
            )
        elif kind == "RP":
            content.extend(
                {"attachment": {"url": value(obx, 5)}} for _ in reps[:1] if value(obx, 5)
            )
        else:
            text = formatted_text(reps)
            if text:
                lines.append(text)
    if lines:
        data = base64.b64encode("\n".join(lines).encode("utf-8")).decode("ascii")
        content.insert(
            0, {"attachment": {"contentType": "text/plain; charset=utf-8", "data": data}}
        )
    if not content:
        raise ConversionError("the document has no content", "OBX-5")
    title = value(txa, 25) or value(txa, 2, 2) or value(txa, 2, 1)
    for item in content:
        item["attachment"].setdefault("title", title)

    confidentiality = mapped(value(txa, 18), DOCUMENT_CONFIDENTIALITY)
    resource: Resource = {
        "masterIdentifier": master,
        "identifier": [file_identifier] if master and file_identifier else [],
        "status": document_status(value(txa, 19)),
        "docStatus": _DOC_STATUS.get(value(txa, 17).upper()),
        "type": codeable_concept(txa.first(2), assembly, table="0270"),
        "subject": patient_ref.reference,
        "date": assembly.instant(value(txa, 6), "TXA-6")
        or assembly.instant(value(txa, 4), "TXA-4"),
        "author": [
            reference
            for rep in repetitions(txa, 9)
            if (reference := practitioner_reference(rep, assembly, "TXA-9")) is not None
        ],
        "authenticator": practitioner_reference(txa.first(10), assembly, "TXA-10"),
        "description": value(txa, 25),
        "securityLabel": [
            {
                "coding": [
                    {
                        "system": confidentiality.system,
                        "code": confidentiality.code,
                        "display": confidentiality.display,
                    }
                ]
            }
        ]
        if confidentiality
        else [],
        "content": content,
        "context": {"encounter": [{"reference": encounter}]} if encounter else None,
    }
    return assembly.put(
        "DocumentReference",
        {"system": key["system"], "value": key["value"]},
        resource,
        location="TXA-12" if master else "TXA-16",
    )
