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

Files: ``datatypes`` (CX, EI, XPN, XAD, XTN, CWE, DTM/DT, NM and the code-system and table
maps), ``header`` (MSH), ``adt`` (PID, PV1, ADT^A08), ``oru`` (ORC, OBR, OBX, NTE, ORU^R01).
"""

from __future__ import annotations

from ehr.modules.hl7v2.from_fhir.adt import adt_a08
from ehr.modules.hl7v2.from_fhir.datatypes import LOCAL_NAMESPACE_PREFIX, OutboundMappingError
from ehr.modules.hl7v2.from_fhir.header import OUTBOUND_VERSION
from ehr.modules.hl7v2.from_fhir.oru import oru_r01

__all__ = [
    "LOCAL_NAMESPACE_PREFIX",
    "OUTBOUND_VERSION",
    "OutboundMappingError",
    "adt_a08",
    "oru_r01",
]
