"""Acceptance, end to end: the real patients route, a real access token, HAPI and PostgreSQL.

Reading one Patient writes exactly one audit record with every field; with the audit table
unwritable the same read is 503 ``audit_unavailable`` and shows nothing of the patient.
Tenant, user and signing key live in the throwaway schema (see conftest); the HAPI partition, its
patients and the rows are deleted at the end.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from support.audit_trail import ActAs, records_of
from support.database import Sessions
from support.tenants import remove_tenants

from ehr.core.config import Settings
from ehr.fhir import FhirClient
from ehr.platform.audit.chain import GENESIS_HASH, verify_chain
from ehr.platform.auth.authorization import CONFIDENTIALITY_SYSTEM
from ehr.platform.auth.service import create_user
from ehr.platform.auth.tokens import issue_access_token_for
from ehr.platform.tenancy import create_tenant

pytestmark = pytest.mark.integration

FAMILY = f"Zzaudit{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class Reader:
    tenant: str
    user_id: uuid.UUID
    token: str
    patient_id: str
    restricted_id: str


@pytest.fixture(scope="module")
async def reader(
    audit_settings: Settings, audit_sessionmaker: Sessions, test_tag: dict[str, str]
) -> AsyncIterator[Reader]:
    slug = f"t-audit-{uuid.uuid4().hex[:8]}"
    fhir = FhirClient(audit_settings.fhir)
    try:
        async with audit_sessionmaker() as session, session.begin():
            tenant, _ = await create_tenant(session, fhir, slug=slug, name="Audit acceptance")
            user = await create_user(
                session,
                tenant_id=tenant.id,
                username="audit.physician",
                password="-".join(secrets.token_urlsafe(6) for _ in range(4)),
                roles=["physician"],
                settings=audit_settings,
            )
            token = await issue_access_token_for(session, audit_settings, user)
        patient = await fhir.for_tenant(slug).create(
            {
                "resourceType": "Patient",
                "meta": {"tag": [test_tag]},
                "name": [{"family": FAMILY, "given": ["Audit"]}],
                "birthDate": "1970-01-01",
            }
        )
        restricted = await fhir.for_tenant(slug).create(
            {
                "resourceType": "Patient",
                "meta": {
                    "tag": [test_tag],
                    "security": [{"system": CONFIDENTIALITY_SYSTEM, "code": "R"}],
                },
                "name": [{"family": FAMILY, "given": ["Restricted"]}],
            }
        )
        yield Reader(
            tenant=slug,
            user_id=user.id,
            token=token,
            patient_id=patient["id"],
            restricted_id=restricted["id"],
        )
    finally:
        try:
            await remove_tenants([slug], fhir, audit_sessionmaker)
        finally:
            await fhir.aclose()


async def test_reading_one_patient_writes_exactly_one_audit_record(
    audit_api: httpx.AsyncClient, audit_sessionmaker: Sessions, act_as: ActAs, reader: Reader
) -> None:
    act_as(None)  # the real authentication dependency: the bearer token below
    request_id = f"acc-{uuid.uuid4().hex[:8]}"
    response = await audit_api.get(
        f"/api/patients/{reader.patient_id}",
        headers={
            "Authorization": f"Bearer {reader.token}",
            "User-Agent": "acceptance/1.0",
            "X-Request-ID": request_id,
            "X-Purpose-Of-Use": "TREAT",
        },
    )
    assert response.status_code == 200, response.text
    assert FAMILY in response.text

    records = await records_of(audit_sessionmaker, reader.tenant)
    assert len(records) == 1
    record = records[0]
    assert (record.tenant, record.seq, record.prev_hash) == (reader.tenant, 1, GENESIS_HASH)
    assert record.occurred_at is not None
    assert (record.actor_type, record.actor_id) == ("user", str(reader.user_id))
    assert record.actor_roles == ["physician"]
    assert record.action == "patient:read"
    assert (record.resource_type, record.resource_id) == ("Patient", reader.patient_id)
    assert record.patient_id == reader.patient_id
    assert (record.outcome, record.http_status) == ("success", 200)
    assert record.source_ip == "127.0.0.1"
    assert record.user_agent == "acceptance/1.0"
    assert record.request_id == request_id
    assert record.purpose_of_use == "TREAT"
    assert record.break_glass is False
    assert FAMILY not in str(record.details)
    async with audit_sessionmaker() as session:
        assert (await verify_chain(session, reader.tenant)).ok


async def test_break_glass_read_is_flagged_with_its_reason(
    audit_api: httpx.AsyncClient, audit_sessionmaker: Sessions, act_as: ActAs, reader: Reader
) -> None:
    act_as(None)
    reason = "Unconscious in the emergency department"
    response = await audit_api.get(
        f"/api/patients/{reader.restricted_id}",
        headers={"Authorization": f"Bearer {reader.token}", "X-Break-Glass-Reason": reason},
    )
    assert response.status_code == 200, response.text
    record = (await records_of(audit_sessionmaker, reader.tenant))[-1]
    assert (record.action, record.resource_id) == ("patient:read", reader.restricted_id)
    assert record.break_glass is True
    assert record.break_glass_reason == reason
    assert record.purpose_of_use == "ETREAT"
    assert record.details is None  # the flag and reason moved into their columns


async def test_an_unwritable_audit_table_fails_the_patient_read_with_503(
    audit_api: httpx.AsyncClient,
    audit_engine: AsyncEngine,
    audit_sessionmaker: Sessions,
    audit_schema: str,
    act_as: ActAs,
    reader: Reader,
) -> None:
    act_as(None)
    before = len(await records_of(audit_sessionmaker, reader.tenant))
    async with audit_engine.begin() as connection:
        await connection.execute(
            text(
                f'CREATE OR REPLACE FUNCTION "{audit_schema}".test_refuse_insert() '
                "RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'audit table unwritable (test)'; END $$"
            )
        )
        await connection.execute(
            text(
                f'CREATE TRIGGER test_refuse_insert BEFORE INSERT ON "{audit_schema}".audit_log '
                f'FOR EACH ROW EXECUTE FUNCTION "{audit_schema}".test_refuse_insert()'
            )
        )
    try:
        response = await audit_api.get(
            f"/api/patients/{reader.patient_id}",
            headers={"Authorization": f"Bearer {reader.token}"},
        )
    finally:
        async with audit_engine.begin() as connection:
            await connection.execute(
                text(f'DROP TRIGGER IF EXISTS test_refuse_insert ON "{audit_schema}".audit_log')
            )
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "audit_unavailable"
    assert FAMILY not in response.text
    assert "1970" not in response.text
    assert len(await records_of(audit_sessionmaker, reader.tenant)) == before
