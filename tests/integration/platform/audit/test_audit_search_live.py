"""Audit search and export over HTTP against the real PostgreSQL (``audit:view``, own tenant)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from support.audit_trail import ActAs, new_tenant, patient_read
from support.database import Sessions
from support.principals import make_principal

from ehr.platform.audit.chain import AuditEntry, append_entries
from ehr.platform.auth.principal import Principal

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


async def _seed(sessionmaker: Sessions, tenant: str) -> list[AuditEntry]:
    """25 records: users u-0/u-1/u-2, patients p-0..p-4, one per minute from T0."""
    entries = [
        patient_read(
            tenant,
            f"p-{i % 5}",
            actor_id=f"u-{i % 3}",
            actor_roles=("physician",),
            action="patient:read" if i % 5 else "patient:search",
            outcome="success" if i % 7 else "denied",
            http_status=200 if i % 7 else 403,
            source_ip="10.1.2.3",
            user_agent='=HYPERLINK("http://evil")' if i == 3 else "browser",
            request_id=f"r-{i}",
            purpose_of_use="ETREAT" if i == 4 else "TREAT",
            break_glass=i == 4,
            break_glass_reason="cardiac arrest" if i == 4 else None,
            details={"n": i},
            occurred_at=T0 + timedelta(minutes=i),
        )
        for i in range(25)
    ]
    async with sessionmaker() as session, session.begin():
        await append_entries(session, entries)
    return entries


@pytest.fixture
async def seeded(audit_sessionmaker: Sessions, act_as: ActAs) -> tuple[str, Principal]:
    tenant = new_tenant()
    await _seed(audit_sessionmaker, tenant)
    other = new_tenant()
    await _seed(audit_sessionmaker, other)  # must never show up
    auditor = make_principal(tenant, "admin")
    act_as(auditor)
    return tenant, auditor


async def _all_pages(api: httpx.AsyncClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(50):
        query = dict(params)
        if cursor:
            query["cursor"] = cursor
        response = await api.get("/api/audit/records", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


async def test_pages_follow_the_cursor_newest_first_without_overlap(
    audit_api: httpx.AsyncClient, seeded: tuple[str, Principal]
) -> None:
    tenant, _ = seeded
    first = (await audit_api.get("/api/audit/records", params={"limit": 10})).json()
    assert first["limit"] == 10
    assert len(first["items"]) == 10
    assert first["next_cursor"]
    items = await _all_pages(audit_api, {"limit": 7, "action": "patient:read"})
    seqs = [item["seq"] for item in items]
    assert seqs == sorted(seqs, reverse=True)
    assert len(seqs) == len(set(seqs)) == 20
    assert {item["tenant"] for item in items} == {tenant}


async def test_filters(audit_api: httpx.AsyncClient, seeded: tuple[str, Principal]) -> None:
    by_user = await _all_pages(audit_api, {"user": "u-1", "action": "patient:read"})
    assert by_user
    assert {i["actor_id"] for i in by_user} == {"u-1"}
    by_patient = await _all_pages(audit_api, {"patient": "p-2"})
    assert {i["patient_id"] for i in by_patient} == {"p-2"}
    assert len(by_patient) == 5
    by_action = await _all_pages(audit_api, {"action": "patient:search"})
    assert len(by_action) == 5
    window = await _all_pages(
        audit_api,
        {
            "since": (T0 + timedelta(minutes=5)).isoformat(),
            "until": (T0 + timedelta(minutes=10)).isoformat(),
        },
    )
    assert sorted(i["seq"] for i in window) == [6, 7, 8, 9, 10]
    record = next(i for i in window if i["seq"] == 6)
    assert record["details"] == {"n": 5}
    assert len(record["record_hash"]) == 64


async def test_searching_is_itself_audited(
    audit_api: httpx.AsyncClient, seeded: tuple[str, Principal]
) -> None:
    _, auditor = seeded
    await audit_api.get("/api/audit/records", params={"patient": "p-3"})
    mine = await _all_pages(audit_api, {"action": "audit:search", "user": str(auditor.subject)})
    assert mine
    assert mine[-1]["patient_id"] == "p-3"
    assert mine[-1]["details"] == {"filters": {"patient": "p-3"}}


async def test_another_tenant_is_out_of_reach(
    audit_api: httpx.AsyncClient, act_as: ActAs, seeded: tuple[str, Principal]
) -> None:
    tenant, _ = seeded
    stranger = new_tenant()
    act_as(make_principal(stranger, "admin"))
    response = await audit_api.get("/api/audit/records", params={"tenant": tenant})
    assert response.status_code == 200
    assert response.json()["items"] == []
    export = await audit_api.get("/api/audit/export", params={"format": "ndjson"})
    assert all(json.loads(line)["tenant"] == stranger for line in export.text.splitlines())


async def test_only_audit_viewers_may_search(
    audit_api: httpx.AsyncClient, act_as: ActAs, seeded: tuple[str, Principal]
) -> None:
    tenant, _ = seeded
    for role in ("physician", "nurse", "billing", "front_desk", "patient"):
        act_as(make_principal(tenant, role))
        for path in ("/api/audit/records", "/api/audit/export"):
            response = await audit_api.get(path)
            assert response.status_code == 403, (role, path)
            assert response.json()["code"] == "permission_denied"
            assert "p-" not in response.text


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "100000"},
        {"cursor": "not-a-cursor"},
        {"cursor": "@@@"},
        {"since": "yesterday"},
        {"since": "2026-01-01T00:00:00"},  # no offset
        {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        {"user": "x" * 65},
        {"patient": "p 1"},
        {"action": "DROP TABLE"},
    ],
)
async def test_invalid_filters_are_422_problems(
    audit_api: httpx.AsyncClient, seeded: tuple[str, Principal], params: dict[str, str]
) -> None:
    response = await audit_api.get("/api/audit/records", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "validation_failed"


async def test_csv_export(audit_api: httpx.AsyncClient, seeded: tuple[str, Principal]) -> None:
    response = await audit_api.get(
        "/api/audit/export", params={"format": "csv", "action": "patient:read"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 20
    assert [int(r["seq"]) for r in rows] == sorted(int(r["seq"]) for r in rows)
    assert rows[0]["actor_roles"] == "physician"
    assert rows[0]["occurred_at"].endswith("Z")
    injected = next(r for r in rows if r["request_id"] == "r-3")
    assert injected["user_agent"].startswith("'=")  # neutralized for spreadsheets


async def test_ndjson_export_bounded_by_filters(
    audit_api: httpx.AsyncClient, seeded: tuple[str, Principal]
) -> None:
    response = await audit_api.get(
        "/api/audit/export", params={"format": "ndjson", "patient": "p-4"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    records = [line for line in lines if line["action"].startswith("patient:")]
    assert len(records) == 5
    assert {line["patient_id"] for line in lines} == {"p-4"}
    glass = next(line for line in records if line["request_id"] == "r-4")
    assert glass["break_glass"] is True
    assert glass["break_glass_reason"] == "cardiac arrest"


async def test_fhir_export_is_a_bundle_of_audit_events(
    audit_api: httpx.AsyncClient, seeded: tuple[str, Principal]
) -> None:
    response = await audit_api.get(
        "/api/audit/export",
        params={"format": "fhir", "until": (T0 + timedelta(minutes=7)).isoformat()},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "collection"
    events = [entry["resource"] for entry in bundle["entry"]]
    assert len(events) == 7
    assert all(entry["fullUrl"].startswith("urn:uuid:") for entry in bundle["entry"])
    for event in events:
        assert event["resourceType"] == "AuditEvent"
        assert event["recorded"].endswith("Z")
        assert event["agent"][0]["requestor"] is True
        assert event["agent"][0]["network"] == {"address": "10.1.2.3", "type": "2"}
        assert event["source"]["site"]
        assert event["entity"][0]["what"]["reference"].startswith("Patient/p-")
    search, read = events[0], events[1]
    assert (search["action"], read["action"]) == ("E", "R")
    assert search["outcome"] == "4"  # i = 0 was denied
    assert read["outcome"] == "0"
    assert read["type"]["code"] == "110110"
    assert {"system": "http://hl7.org/fhir/restful-interaction", "code": "read"} in read["subtype"]
    glass = events[4]
    assert glass["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT"
    assert glass["agent"][0]["purposeOfUse"][0]["coding"][0]["code"] == "ETREAT"
    extension = next(e for e in glass["extension"] if e["url"] == "urn:ehr:audit:break-glass")
    assert {"url": "reason", "valueString": "cardiac arrest"} in extension["extension"]
