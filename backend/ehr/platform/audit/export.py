"""Audit export: CSV, NDJSON and a FHIR R4 ``Bundle`` of ``AuditEvent`` (streamed).

The mappers are pure (one record in, one row/line/resource out); the ``stream_*`` functions turn
an async iterator of records into the chunks of a streaming response.

AuditEvent mapping (FHIR R4):

* ``type``: DICOM ``110110`` Patient Record for patient-data access, ``110114`` User
  Authentication for ``auth:*`` events, ``110113`` Security Alert for ``break_glass:*``, else
  ``rest`` (audit-event-type); ``subtype``: the FHIR restful interaction where one applies
  (read, search-type, create, update, delete) and our own action code (``urn:ehr:audit-action``).
* ``action``: C/R/U/D/E from the action's verb; ``recorded``: ``occurred_at``;
  ``outcome``: success ``0``, denied ``4``, failure ``8``; ``outcomeDesc``: the HTTP status.
* ``purposeOfEvent`` and ``agent.purposeOfUse``: the v3-ActReason code (break-glass = ``ETREAT``)
  and, for break-glass, the extension ``urn:ehr:audit:break-glass`` with the reason.
* ``agent``: the requestor (``who.identifier`` user / API key id, roles, network address);
  ``source``: the EHR API in the tenant (``site``); ``entity``: the patient (role Patient) and the
  resource. Request id, user agent and the chain position (tenant, shard, seq, hashes) are
  extensions.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from ehr.core.db.models import AuditRecord
from ehr.platform.audit.chain import HASHED_FIELDS, format_timestamp

__all__ = [
    "CSV_COLUMNS",
    "EXT_BREAK_GLASS",
    "EXT_CHAIN",
    "EXT_REQUEST_ID",
    "EXT_USER_AGENT",
    "action_code",
    "full_url",
    "record_to_audit_event",
    "record_to_csv_row",
    "record_to_json",
    "stream_bundle",
    "stream_csv",
    "stream_ndjson",
]

# The record's own id, every hashed field, then the chain position and links (the shard names
# the record's chain within the tenant; it is not hashed: docs/adr/0008-audit-trail.md).
CSV_COLUMNS: Final = ("id", *HASHED_FIELDS, "shard", "prev_hash", "record_hash")

EXT_BREAK_GLASS: Final = "urn:ehr:audit:break-glass"
EXT_REQUEST_ID: Final = "urn:ehr:audit:request-id"
EXT_USER_AGENT: Final = "urn:ehr:audit:user-agent"
EXT_CHAIN: Final = "urn:ehr:audit:chain"
ACTION_SYSTEM: Final = "urn:ehr:audit-action"
ROLE_SYSTEM: Final = "urn:ehr:role"
ACTOR_SYSTEMS: Final = {
    "user": "urn:ehr:user",
    "api_key": "urn:ehr:api-key",
    "cds_client": "urn:ehr:cds-client",
    "smart_client": "urn:ehr:smart-client",
    "system": "urn:ehr:system",
}
DCM: Final = "http://dicom.nema.org/resources/ontology/DCM"
AUDIT_EVENT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION: Final = "http://hl7.org/fhir/restful-interaction"
ACT_REASON: Final = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
OBJECT_ROLE: Final = "http://terminology.hl7.org/CodeSystem/object-role"
OUTCOME_CODES: Final = {"success": "0", "denied": "4", "failure": "8"}

# Verb of an action ("patient:read" → "read") → (AuditEvent.action, restful interaction or None).
_VERBS: Final[Mapping[str, tuple[str, str | None]]] = {
    "read": ("R", "read"),
    "view": ("R", None),
    "vread": ("R", "vread"),
    "history": ("R", "history-instance"),
    "search": ("E", "search-type"),
    "export": ("E", None),
    "create": ("C", "create"),
    "write": ("U", "update"),
    "update": ("U", "update"),
    "patch": ("U", "patch"),
    "delete": ("D", "delete"),
}
_ENTRY_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:ehr:audit")
# Cells a spreadsheet would run as a formula (CSV injection): shown with a leading quote.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def action_code(action: str) -> tuple[str, str | None]:
    """(AuditEvent.action C/R/U/D/E, FHIR restful interaction or None) for our action code."""
    verb = action.rsplit(":", 1)[-1]
    return _VERBS.get(verb, ("E", None))


def record_to_json(record: AuditRecord) -> dict[str, Any]:
    """The record as a JSON object (NDJSON line; same members as the CSV columns)."""
    values: dict[str, Any] = {column: getattr(record, column) for column in CSV_COLUMNS}
    values["occurred_at"] = format_timestamp(record.occurred_at)
    values["actor_roles"] = list(record.actor_roles or ())
    return values


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        text = " ".join(str(item) for item in value)
    elif isinstance(value, dict):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    else:
        text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def record_to_csv_row(record: AuditRecord) -> list[str]:
    """One CSV row (columns :data:`CSV_COLUMNS`; roles space-separated; details as JSON)."""
    values = record_to_json(record)
    return [_csv_cell(values[column]) for column in CSV_COLUMNS]


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    coding = {"system": system, "code": code}
    if display is not None:
        coding["display"] = display
    return coding


def _event_type(action: str) -> dict[str, str]:
    if action.startswith("auth:"):
        return _coding(DCM, "110114", "User Authentication")
    if action.startswith("break_glass:"):
        return _coding(DCM, "110113", "Security Alert")
    if action.startswith(("patient:", "clinical:", "medication:", "order:", "result:")):
        return _coding(DCM, "110110", "Patient Record")
    return _coding(AUDIT_EVENT_TYPE, "rest", "RESTful Operation")


def _purpose(code: str) -> dict[str, Any]:
    return {"coding": [_coding(ACT_REASON, code)]}


def _entities(record: AuditRecord) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    if record.patient_id:
        entities.append(
            {
                "what": {"reference": f"Patient/{record.patient_id}"},
                "type": _coding(
                    "http://terminology.hl7.org/CodeSystem/audit-entity-type", "1", "Person"
                ),
                "role": _coding(
                    "http://terminology.hl7.org/CodeSystem/object-role", "1", "Patient"
                ),
            }
        )
    is_patient_itself = (
        record.resource_type == "Patient" and record.resource_id == record.patient_id
    )
    if record.resource_type and not is_patient_itself:
        what: dict[str, Any] = (
            {"reference": f"{record.resource_type}/{record.resource_id}"}
            if record.resource_id
            else {"type": record.resource_type}
        )
        entities.append(
            {
                "what": what,
                "type": _coding(
                    "http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object"
                ),
            }
        )
    return entities


def record_to_audit_event(record: AuditRecord) -> dict[str, Any]:
    """The record as a FHIR R4 ``AuditEvent``."""
    action, interaction = action_code(record.action)
    subtype = [_coding(ACTION_SYSTEM, record.action)]
    if interaction is not None:
        subtype.insert(0, _coding(RESTFUL_INTERACTION, interaction))
    purpose = record.purpose_of_use
    agent: dict[str, Any] = {
        "who": {
            "identifier": {
                "system": ACTOR_SYSTEMS.get(record.actor_type, "urn:ehr:actor"),
                "value": record.actor_id or record.actor_type,
            }
        },
        "requestor": True,
    }
    if record.actor_roles:
        agent["role"] = [{"coding": [_coding(ROLE_SYSTEM, role)]} for role in record.actor_roles]
    if record.source_ip:
        agent["network"] = {"address": record.source_ip, "type": "2"}  # 2 = IP address
    if purpose:
        agent["purposeOfUse"] = [_purpose(purpose)]
    if record.user_agent:
        agent["extension"] = [{"url": EXT_USER_AGENT, "valueString": record.user_agent}]

    extensions: list[dict[str, Any]] = [
        {
            "url": EXT_CHAIN,
            "extension": [
                {"url": "tenant", "valueString": record.tenant},
                {"url": "shard", "valueInteger": record.shard},
                {"url": "seq", "valueString": str(record.seq)}
                if record.seq > 2**31 - 1
                else {"url": "seq", "valueInteger": record.seq},
                {"url": "prevHash", "valueString": record.prev_hash},
                {"url": "recordHash", "valueString": record.record_hash},
            ],
        }
    ]
    if record.request_id:
        extensions.append({"url": EXT_REQUEST_ID, "valueString": record.request_id})
    if record.break_glass:
        glass: list[dict[str, Any]] = [{"url": "asserted", "valueBoolean": True}]
        if record.break_glass_reason:
            glass.append({"url": "reason", "valueString": record.break_glass_reason})
        extensions.append({"url": EXT_BREAK_GLASS, "extension": glass})

    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(record.id),
        "extension": extensions,
        "type": _event_type(record.action),
        "subtype": subtype,
        "action": action,
        "recorded": format_timestamp(record.occurred_at),
        "outcome": OUTCOME_CODES.get(record.outcome, "8"),
        "agent": [agent],
        "source": {
            "site": record.tenant,
            "observer": {"display": "EHR platform API"},
            "type": [
                _coding(
                    "http://terminology.hl7.org/CodeSystem/security-source-type", "3", "Web Server"
                )
            ],
        },
    }
    if record.http_status is not None:
        event["outcomeDesc"] = f"HTTP {record.http_status}"
    if purpose:
        event["purposeOfEvent"] = [_purpose(purpose)]
    entities = _entities(record)
    if entities:
        event["entity"] = entities
    return event


def full_url(record: AuditRecord) -> str:
    """A stable ``urn:uuid`` for the record's Bundle entry (from its chain position).

    Shard 0 keeps the name it had before chains were sharded (tenant/seq), so re-exported
    records keep their entry ids.
    """
    position = (
        f"{record.tenant}/{record.seq}"
        if record.shard == 0
        else f"{record.tenant}/{record.shard}/{record.seq}"
    )
    return f"urn:uuid:{uuid.uuid5(_ENTRY_NAMESPACE, position)}"


# --- streams ------------------------------------------------------------------------------------


async def stream_csv(records: AsyncIterator[AuditRecord]) -> AsyncIterator[str]:
    """A header line, then one CSV line per record."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    async for record in records:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(record_to_csv_row(record))
        yield buffer.getvalue()


async def stream_ndjson(records: AsyncIterator[AuditRecord]) -> AsyncIterator[str]:
    """One JSON object per line."""
    async for record in records:
        yield json.dumps(record_to_json(record), separators=(",", ":"), ensure_ascii=False) + "\n"


async def stream_bundle(records: AsyncIterator[AuditRecord]) -> AsyncIterator[str]:
    """A FHIR ``Bundle`` (type ``collection``) of ``AuditEvent``, written as it streams."""
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    yield (f'{{"resourceType":"Bundle","type":"collection","timestamp":"{timestamp}","entry":[')
    first = True
    async for record in records:
        entry = {"fullUrl": full_url(record), "resource": record_to_audit_event(record)}
        yield ("" if first else ",") + json.dumps(entry, separators=(",", ":"), ensure_ascii=False)
        first = False
    yield "]}"
