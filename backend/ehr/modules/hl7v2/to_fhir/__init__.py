"""HL7 v2 -> FHIR R4: one parsed message as one transaction Bundle, after the HL7 v2-to-FHIR
IG's message, segment, datatype and vocabulary maps.

    conversion = to_transaction(parse_message(raw), ConversionContext(
        message_id=row.id.hex, received_at=row.received_at, tenant=tenant.slug))
    await tenant_fhir.transaction(conversion.bundle)

Pure: no I/O, no logging of message content. Every resource is a conditional write keyed on a
business identifier (see :mod:`.assembly` and each domain module for its key), so converting the
same message again — or a corrected one — updates what the first conversion wrote.

Files by domain: ``datatypes`` / ``identifiers`` / ``datetimes`` (v2 datatypes), ``patient``
(PID, PD1, MRG), ``clinical`` (NK1, AL1, DG1), ``encounter`` (PV1, PV2), ``orders`` (ORC/OBR ->
ServiceRequest), ``results`` (OBR -> DiagnosticReport, OBX -> Observation), ``immunizations``
(RXA/RXR), ``appointments`` (SCH/AIS/AIL/AIP), ``documents`` (TXA + OBX), ``header``
(MessageHeader, Provenance), ``messages`` (per-event assembly), ``vocabulary`` (IG ConceptMaps).
"""

from __future__ import annotations

from ehr.modules.hl7v2.to_fhir.conversion import Conversion, ConversionContext, ConversionError
from ehr.modules.hl7v2.to_fhir.identifiers import identifier_system
from ehr.modules.hl7v2.to_fhir.messages import SUPPORTED_EVENTS, to_transaction

__all__ = [
    "SUPPORTED_EVENTS",
    "Conversion",
    "ConversionContext",
    "ConversionError",
    "identifier_system",
    "to_transaction",
]
