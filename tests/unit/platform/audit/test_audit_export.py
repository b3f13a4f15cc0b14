"""Export mappers: CSV rows, NDJSON objects, FHIR R4 AuditEvent (no database)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime

import pytest

from ehr.core.db.models import AuditRecord
from ehr.core.errors import RequestValidationFailed
from ehr.platform.audit.chain import GENESIS_HASH, AuditEntry, link_entries
from ehr.platform.audit.export import (
    CSV_COLUMNS,
    EXT_BREAK_GLASS,
    EXT_CHAIN,
    action_code,
    full_url,
    record_to_audit_event,
    record_to_csv_row,
    record_to_json,
    stream_bundle,
    stream_csv,
    stream_ndjson,
)
from ehr.platform.audit.schemas import decode_cursor, encode_cursor

WHEN = datetime(2026, 11, 21, 6, 30, tzinfo=UTC)
# The namespace of the Bundle entry ids (fixed: re-exports keep their ids).
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:ehr:audit")


def _records(*entries: AuditEntry) -> list[AuditRecord]:
    records = link_entries(entries, last_seq=0, last_hash=GENESIS_HASH, now=WHEN)
    for number, record in enumerate(records, start=1):
        record.id = number
    return records


def _entry(**overrides: object) -> AuditEntry:
    values: dict[str, object] = {
        "tenant": "t-one",
        "actor_type": "user",
        "actor_id": "u-1",
        "actor_roles": ("nurse", "physician"),
        "action": "patient:read",
        "outcome": "success",
        "resource_type": "Patient",
        "resource_id": "p-1",
        "patient_id": "p-1",
        "http_status": 200,
        "source_ip": "10.0.0.1",
        "user_agent": "browser",
        "request_id": "req-1",
        "purpose_of_use": "TREAT",
    }
    values.update(overrides)
    return AuditEntry(**values)  # type: ignore[arg-type]


async def _collect(chunks: AsyncIterator[str]) -> str:
    return "".join([chunk async for chunk in chunks])


async def _aiter(records: Iterable[AuditRecord]) -> AsyncIterator[AuditRecord]:
    for record in records:
        yield record


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("patient:read", ("R", "read")),
        ("patient:search", ("E", "search-type")),
        ("patient:create", ("C", "create")),
        ("patient:write", ("U", "update")),
        ("clinical:delete", ("D", "delete")),
        ("auth:login", ("E", None)),
        ("audit:export", ("E", None)),
    ],
)
def test_action_codes(action: str, expected: tuple[str, str | None]) -> None:
    assert action_code(action) == expected


def test_json_and_csv_rows() -> None:
    (record,) = _records(_entry(details={"k": 1}))
    values = record_to_json(record)
    assert list(values) == list(CSV_COLUMNS)
    assert values["occurred_at"] == "2026-11-21T06:30:00.000000Z"
    assert values["actor_roles"] == ["nurse", "physician"]
    row = dict(zip(CSV_COLUMNS, record_to_csv_row(record), strict=True))
    assert row["actor_roles"] == "nurse physician"
    assert row["break_glass"] == "false"
    assert row["details"] == '{"k":1}'
    assert row["resource_type"] == "Patient"


def test_csv_cells_cannot_run_as_formulas() -> None:
    (record,) = _records(_entry(user_agent="=cmd|'/c calc'!A1", request_id="@x"))
    row = dict(zip(CSV_COLUMNS, record_to_csv_row(record), strict=True))
    assert row["user_agent"] == "'=cmd|'/c calc'!A1"
    assert row["request_id"] == "'@x"


def test_audit_event_of_a_patient_read() -> None:
    (record,) = _records(_entry())
    event = record_to_audit_event(record)
    assert event["resourceType"] == "AuditEvent"
    assert event["type"]["code"] == "110110"
    assert event["action"] == "R"
    assert event["recorded"] == "2026-11-21T06:30:00.000000Z"
    assert event["outcome"] == "0"
    assert event["outcomeDesc"] == "HTTP 200"
    agent = event["agent"][0]
    assert agent["who"]["identifier"] == {"system": "urn:ehr:user", "value": "u-1"}
    assert agent["requestor"] is True
    assert agent["network"] == {"address": "10.0.0.1", "type": "2"}
    assert [r["coding"][0]["code"] for r in agent["role"]] == ["nurse", "physician"]
    assert agent["purposeOfUse"][0]["coding"][0]["code"] == "TREAT"
    assert event["purposeOfEvent"][0]["coding"][0]["code"] == "TREAT"
    # The patient is the resource: one entity, role Patient.
    assert event["entity"] == [
        {
            "what": {"reference": "Patient/p-1"},
            "type": {
                "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                "code": "1",
                "display": "Person",
            },
            "role": {
                "system": "http://terminology.hl7.org/CodeSystem/object-role",
                "code": "1",
                "display": "Patient",
            },
        }
    ]
    chain = next(e for e in event["extension"] if e["url"] == EXT_CHAIN)
    assert {"url": "seq", "valueInteger": 1} in chain["extension"]
    assert not any(e["url"] == EXT_BREAK_GLASS for e in event["extension"])


def test_audit_event_of_a_denied_break_glass_observation_read() -> None:
    (record,) = _records(
        _entry(
            action="clinical:read",
            resource_type="Observation",
            resource_id="o-9",
            outcome="denied",
            http_status=403,
            purpose_of_use="ETREAT",
            break_glass=True,
            break_glass_reason="unconscious",
            actor_type="api_key",
        )
    )
    event = record_to_audit_event(record)
    assert event["outcome"] == "4"
    assert event["agent"][0]["who"]["identifier"]["system"] == "urn:ehr:api-key"
    assert event["agent"][0]["purposeOfUse"][0]["coding"][0]["code"] == "ETREAT"
    assert [e["what"] for e in event["entity"]] == [
        {"reference": "Patient/p-1"},
        {"reference": "Observation/o-9"},
    ]
    glass = next(e for e in event["extension"] if e["url"] == EXT_BREAK_GLASS)
    assert glass["extension"] == [
        {"url": "asserted", "valueBoolean": True},
        {"url": "reason", "valueString": "unconscious"},
    ]


def test_failure_and_security_events() -> None:
    failed, login = _records(
        _entry(outcome="failure", http_status=502),
        _entry(action="auth:login", resource_type=None, resource_id=None, patient_id=None),
    )
    assert record_to_audit_event(failed)["outcome"] == "8"
    event = record_to_audit_event(login)
    assert event["type"]["code"] == "110114"
    assert "entity" not in event


async def test_streams_parse() -> None:
    records = _records(_entry(), _entry(patient_id="p-2", resource_id="p-2"))
    text = await _collect(stream_csv(_aiter(records)))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["patient_id"] for row in rows] == ["p-1", "p-2"]
    lines = (await _collect(stream_ndjson(_aiter(records)))).splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2]
    bundle = json.loads(await _collect(stream_bundle(_aiter(records))))
    assert bundle["resourceType"] == "Bundle"
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["AuditEvent"] * 2
    assert bundle["entry"][0]["fullUrl"] == full_url(records[0])
    empty = json.loads(await _collect(stream_bundle(_aiter([]))))
    assert empty["entry"] == []


def test_cursor_round_trip_and_refusal() -> None:
    position = (WHEN.replace(microsecond=654321), 42)
    assert decode_cursor(encode_cursor(position)) == position
    old_style = "YTE6NDI"  # "a1:42": a cursor of the per-tenant seq, before shards
    for bad in ("", "abc", encode_cursor(position)[:-2] + "zz", "YTE6LTE", old_style):
        with pytest.raises(RequestValidationFailed):
            decode_cursor(bad)


def test_the_export_names_the_records_chain() -> None:
    (first,) = _records(_entry())
    (other,) = _records(_entry())
    other.shard = 5
    assert record_to_json(other)["shard"] == 5
    assert dict(zip(CSV_COLUMNS, record_to_csv_row(other), strict=True))["shard"] == "5"
    chain = next(e for e in record_to_audit_event(other)["extension"] if e["url"] == EXT_CHAIN)
    assert {"url": "shard", "valueInteger": 5} in chain["extension"]
    # Same tenant and seq in two shards: two entries; shard 0 keeps its pre-shard entry id.
    assert full_url(first) != full_url(other)
    assert full_url(first) == f"urn:uuid:{uuid.uuid5(NAMESPACE, f'{first.tenant}/1')}"
