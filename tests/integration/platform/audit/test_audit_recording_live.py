"""Recording PHI access against the real PostgreSQL: one record per access, never unrecorded."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from support.audit_trail import PHI_MARKER, ActAs, new_tenant, records_of
from support.database import Sessions
from support.principals import make_principal

from ehr.platform.audit.chain import GENESIS_HASH, HASHED_FIELDS, compute_hash, verify_chain
from ehr.platform.audit.dependencies import record_security_event

pytestmark = pytest.mark.integration


async def test_reading_a_patient_writes_exactly_one_complete_record(
    audit_api: httpx.AsyncClient, audit_sessionmaker: Sessions, act_as: ActAs
) -> None:
    tenant = new_tenant()
    principal = make_principal(tenant, "physician", "nurse")
    act_as(principal)
    request_id = f"req-{uuid.uuid4().hex[:8]}"
    response = await audit_api.get(
        "/api/_test/phi/pat-1",
        headers={
            "User-Agent": "ehr-tests/1.0 " + "x" * 600,
            "X-Request-ID": request_id,
            "X-Purpose-Of-Use": "hpaymt",
        },
    )
    assert response.status_code == 200

    records = await records_of(audit_sessionmaker, tenant)
    assert len(records) == 1
    record = records[0]
    assert record.tenant == tenant
    assert record.seq == 1
    assert record.occurred_at.tzinfo is not None
    assert record.actor_type == "user"
    assert record.actor_id == str(principal.subject)
    assert record.actor_roles == ["nurse", "physician"]
    assert record.action == "patient:read"
    assert (record.resource_type, record.resource_id, record.patient_id) == (
        "Patient",
        "pat-1",
        "pat-1",
    )
    assert record.outcome == "success"
    assert record.http_status == 200
    assert record.source_ip == "127.0.0.1"  # httpx's ASGI transport client address
    assert record.user_agent is not None
    assert record.user_agent.startswith("ehr-tests/1.0")
    assert len(record.user_agent) == 512  # truncated to the column
    assert record.request_id == request_id
    assert record.purpose_of_use == "HPAYMT"
    assert record.break_glass is False
    assert record.break_glass_reason is None
    assert record.details is None
    assert record.prev_hash == GENESIS_HASH
    fields = {name: getattr(record, name) for name in HASHED_FIELDS}
    assert record.record_hash == compute_hash(fields, GENESIS_HASH)
    assert PHI_MARKER not in str(fields)


async def test_each_noted_access_is_one_record_and_the_chain_holds(
    audit_api: httpx.AsyncClient, audit_sessionmaker: Sessions, physician_tenant: str
) -> None:
    tenant = physician_tenant
    assert (await audit_api.get("/api/_test/phi/pat-2/observations")).status_code == 200
    assert (await audit_api.get("/api/_test/phi/pat-2")).status_code == 200
    assert (await audit_api.get("/api/_test/phi/none/at-all")).status_code == 200  # no notes
    records = await records_of(audit_sessionmaker, tenant)
    assert [(r.seq, r.action, r.resource_id) for r in records] == [
        (1, "clinical:read", "o-1"),
        (2, "clinical:read", "o-2"),
        (3, "patient:read", "pat-2"),
    ]
    assert all(r.purpose_of_use == "TREAT" for r in records)
    async with audit_sessionmaker() as session:
        result = await verify_chain(session, tenant)
    assert result.ok
    assert result.records_checked == 3


async def test_break_glass_is_flagged_with_its_reason(
    audit_api: httpx.AsyncClient, audit_sessionmaker: Sessions, physician_tenant: str
) -> None:
    tenant = physician_tenant
    response = await audit_api.get(
        "/api/_test/phi/pat-3", headers={"X-Test-Break-Glass": "unconscious in ED"}
    )
    assert response.status_code == 200
    (record,) = await records_of(audit_sessionmaker, tenant)
    assert record.break_glass is True
    assert record.break_glass_reason == "unconscious in ED"
    assert record.purpose_of_use == "ETREAT"


async def test_failed_and_denied_accesses_are_recorded_with_their_status(
    audit_api: httpx.AsyncClient, audit_sessionmaker: Sessions, act_as: ActAs, physician_tenant: str
) -> None:
    tenant = physician_tenant
    gone = await audit_api.get("/api/_test/phi/pat-4/gone")
    assert gone.status_code == 404
    conflict = await audit_api.post("/api/_test/phi/pat-4/conflict")
    assert conflict.status_code == 409  # the request's own transaction was rolled back
    act_as(make_principal(tenant, "admin"))  # no patient:read: refused before the handler
    assert (await audit_api.get("/api/_test/phi/pat-4")).status_code == 403
    records = await records_of(audit_sessionmaker, tenant)
    assert [(r.action, r.outcome, r.http_status) for r in records] == [
        ("patient:read", "failure", 404),
        ("patient:write", "failure", 409),
    ]


async def test_an_invalid_purpose_of_use_is_422_and_writes_nothing(
    audit_api: httpx.AsyncClient, audit_sessionmaker: Sessions, physician_tenant: str
) -> None:
    tenant = physician_tenant
    response = await audit_api.get("/api/_test/phi/pat-5", headers={"X-Purpose-Of-Use": "SELL"})
    assert response.status_code == 422
    assert PHI_MARKER not in response.text
    assert await records_of(audit_sessionmaker, tenant) == []


async def test_security_events_and_concurrent_writers_keep_one_gapless_chain(
    audit_sessionmaker: Sessions,
) -> None:
    tenant = new_tenant()
    await asyncio.gather(
        *(
            record_security_event(
                audit_sessionmaker,
                action="auth:login",
                outcome="failure" if i % 3 else "success",
                tenant=tenant,
                actor_type="user",
                actor_id=f"user-{i}",
                http_status=401 if i % 3 else 200,
                details={"reason": "bad_password"} if i % 3 else None,
            )
            for i in range(20)
        )
    )
    records = await records_of(audit_sessionmaker, tenant)
    assert [r.seq for r in records] == list(range(1, 21))
    async with audit_sessionmaker() as session:
        assert (await verify_chain(session, tenant)).ok


# --- the audit table refuses changes, and cannot be bypassed --------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET outcome = 'success' WHERE tenant = :tenant",
        "DELETE FROM audit_log WHERE tenant = :tenant",
        "TRUNCATE audit_log",
    ],
)
async def test_update_delete_and_truncate_are_refused_by_the_database(
    audit_engine: AsyncEngine, audit_sessionmaker: Sessions, audit_schema: str, statement: str
) -> None:
    tenant = new_tenant()
    await record_security_event(
        audit_sessionmaker, action="auth:login", outcome="success", tenant=tenant
    )
    async with audit_engine.connect() as connection:
        await connection.execute(text(f'SET search_path TO "{audit_schema}"'))
        with pytest.raises(DBAPIError, match="append-only"):
            await connection.execute(text(statement), {"tenant": tenant})
        await connection.rollback()
    assert len(await records_of(audit_sessionmaker, tenant)) == 1


@pytest.fixture
async def admin_connection(
    audit_engine: AsyncEngine, audit_schema: str
) -> AsyncIterator[AsyncEngine]:
    """The engine, with the schema guaranteed restored after a test broke the audit table."""
    yield audit_engine
    async with audit_engine.begin() as connection:
        await connection.execute(
            text(f'DROP TRIGGER IF EXISTS test_refuse_insert ON "{audit_schema}".audit_log')
        )
        exists = await connection.scalar(
            text("SELECT to_regclass(:name) IS NOT NULL"),
            {"name": f'"{audit_schema}".audit_log_moved'},
        )
        if exists:
            await connection.execute(
                text(f'ALTER TABLE "{audit_schema}".audit_log_moved RENAME TO audit_log')
            )


async def _refuse_inserts(engine: AsyncEngine, schema: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                f'CREATE OR REPLACE FUNCTION "{schema}".test_refuse_insert() RETURNS trigger '
                "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit table unwritable (test)'; "
                "END $$"
            )
        )
        await connection.execute(
            text(
                f'CREATE TRIGGER test_refuse_insert BEFORE INSERT ON "{schema}".audit_log '
                f'FOR EACH ROW EXECUTE FUNCTION "{schema}".test_refuse_insert()'
            )
        )


async def _move_table(engine: AsyncEngine, schema: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(f'ALTER TABLE "{schema}".audit_log RENAME TO audit_log_moved')
        )


@pytest.mark.parametrize("breakage", ["insert_refused", "table_missing"])
async def test_an_unwritable_audit_table_makes_phi_requests_fail_with_503(
    audit_api: httpx.AsyncClient,
    audit_sessionmaker: Sessions,
    admin_connection: AsyncEngine,
    audit_schema: str,
    physician_tenant: str,
    breakage: str,
) -> None:
    if breakage == "insert_refused":
        await _refuse_inserts(admin_connection, audit_schema)
    else:
        await _move_table(admin_connection, audit_schema)

    response = await audit_api.get("/api/_test/phi/pat-6")

    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "audit_unavailable"
    assert PHI_MARKER not in response.text
    assert set(body) == {"type", "title", "status", "detail", "instance", "code", "request_id"}
    # A request that touches no PHI is unaffected.
    assert (await audit_api.get("/api/_test/phi/none/at-all")).status_code == 200


async def test_a_locked_audit_table_fails_the_request_instead_of_hanging(
    audit_api: httpx.AsyncClient,
    audit_engine: AsyncEngine,
    audit_sessionmaker: Sessions,
    audit_schema: str,
    physician_tenant: str,
) -> None:
    tenant = physician_tenant
    async with audit_engine.connect() as connection:
        await connection.execute(
            text(f'LOCK TABLE "{audit_schema}".audit_log IN ACCESS EXCLUSIVE MODE')
        )
        response = await asyncio.wait_for(audit_api.get("/api/_test/phi/pat-7"), timeout=20)
        await connection.rollback()
    assert response.status_code == 503
    assert response.json()["code"] == "audit_unavailable"
    assert PHI_MARKER not in response.text
    assert await records_of(audit_sessionmaker, tenant) == []
    # Once the lock is gone the same request is recorded and answered.
    assert (await audit_api.get("/api/_test/phi/pat-7")).status_code == 200
    assert len(await records_of(audit_sessionmaker, tenant)) == 1
