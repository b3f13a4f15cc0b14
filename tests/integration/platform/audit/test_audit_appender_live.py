"""The group-committing appender against the real PostgreSQL (ehr.platform.audit.appender).

Concurrent appends of one tenant share transactions and still form one unbroken chain; two
appenders on separate connection pools (two processes, as far as the database can tell) with
stale cached heads relink on the (tenant, seq) conflict instead of failing.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from support.audit_trail import patient_read
from support.database import Sessions

from ehr.core.db.engine import create_sessionmaker
from ehr.core.db.models import AuditRecord
from ehr.platform.audit.appender import ChainAppender
from ehr.platform.audit.chain import AuditEntry, verify_chain

pytestmark = pytest.mark.integration


def _entry(tenant: str, n: int) -> AuditEntry:
    return patient_read(tenant, str(n))


def _appender(sessionmaker: Sessions) -> ChainAppender:
    return ChainAppender(sessionmaker, lock_timeout_ms=3000, statement_timeout_ms=5000)


async def _chain(sessionmaker: Sessions, tenant: str) -> list[int]:
    async with sessionmaker() as session:
        result = await verify_chain(session, tenant)
        assert result.ok, result.broken
        seqs = await session.scalars(
            select(AuditRecord.seq).where(AuditRecord.tenant == tenant).order_by(AuditRecord.seq)
        )
        return list(seqs)


async def test_concurrent_appends_share_transactions_and_keep_one_chain(
    audit_sessionmaker: Sessions,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    appender = _appender(audit_sessionmaker)
    commits = 0
    original = appender._write

    async def counted(tenant_: str, entries: list[AuditEntry]) -> None:
        nonlocal commits
        commits += 1
        await original(tenant_, entries)

    appender._write = counted  # type: ignore[method-assign]
    await asyncio.gather(*(appender.append([_entry(tenant, n)]) for n in range(60)))
    assert await _chain(audit_sessionmaker, tenant) == list(range(1, 61))
    assert commits < 60  # batched: fewer transactions than appends


async def test_two_pools_with_stale_heads_relink(
    audit_engine: AsyncEngine, audit_sessionmaker: Sessions
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    first = _appender(audit_sessionmaker)
    second = _appender(create_sessionmaker(audit_engine))
    await first.append([_entry(tenant, 0)])
    await second.append([_entry(tenant, 1)])  # moves the head under first's cached one
    for n in range(2, 12):
        appender = first if n % 2 else second
        await appender.append([_entry(tenant, n), _entry(tenant, n + 100)])
    assert await _chain(audit_sessionmaker, tenant) == list(range(1, 23))


async def test_a_failed_batch_fails_only_its_own_caller(audit_sessionmaker: Sessions) -> None:
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    appender = _appender(audit_sessionmaker)
    # Text is made storable (storable_entry); a status outside SMALLINT still fails the insert.
    bad = AuditEntry(
        tenant=tenant, actor_type="user", action="x", outcome="success", http_status=100_000
    )
    results = await asyncio.gather(
        *(appender.append([_entry(tenant, n)]) for n in range(5)),
        appender.append([bad]),
        *(appender.append([_entry(tenant, n)]) for n in range(5, 10)),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1
    assert results[5] is failures[0]
    async with audit_sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(AuditRecord).where(AuditRecord.tenant == tenant)
        )
    assert count == 10
    assert await _chain(audit_sessionmaker, tenant) == list(range(1, 11))


async def test_input_cannot_stop_the_audit_record_from_being_written(
    audit_sessionmaker: Sessions,
) -> None:
    # What a hostile caller could put in a CDS patientId or a FHIR id: NUL, a lone surrogate,
    # far more than the column holds. PostgreSQL refuses all three as they are.
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    hostile = AuditEntry(
        tenant=tenant,
        actor_type="cds_client",
        action="cds:order-sign",
        outcome="failure",
        patient_id="\ud800",
        resource_id="a\x00b" * 100,
        details={"hook_instance": "\x00", "keys": ["\udfff"]},
    )
    await _appender(audit_sessionmaker).append([hostile])
    async with audit_sessionmaker() as session:
        record = await session.scalar(select(AuditRecord).where(AuditRecord.tenant == tenant))
    assert record is not None
    assert record.patient_id == "\ufffd"
    assert record.resource_id is not None
    assert len(record.resource_id) == 64
    assert record.details is not None
    assert record.details["_altered"] == [
        "details.hook_instance",
        "details.keys[0]",
        "patient_id",
        "resource_id",
    ]
    assert await _chain(audit_sessionmaker, tenant) == [1]
