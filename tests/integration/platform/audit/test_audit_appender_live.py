"""The group-committing appender against the real PostgreSQL (ehr.platform.audit.appender).

Concurrent appends of one tenant share calls and still form one unbroken chain; appenders on
separate connection pools (separate processes, as far as the database can tell) on different
shards interleave without touching each other's chain, and on one shard relink on the head the
SQL function returns; one append is one statement outside a transaction block; a held chain lock
ends in ``AuditUnavailable`` after the lock timeout.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from support.audit_trail import patient_read
from support.database import Sessions

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.core.db.models import AuditRecord
from ehr.core.errors import AuditUnavailable
from ehr.platform.audit.appender import ChainAppender, appender_for
from ehr.platform.audit.chain import AuditEntry, lock_key, verify_chain
from ehr.platform.audit.dependencies import record_security_event

pytestmark = pytest.mark.integration


def _entry(tenant: str, n: int) -> AuditEntry:
    return patient_read(tenant, str(n))


def _appender(sessionmaker: Sessions, **options: Any) -> ChainAppender:
    return ChainAppender(sessionmaker, lock_timeout_ms=3000, statement_timeout_ms=5000, **options)


async def _chains(sessionmaker: Sessions, tenant: str) -> dict[int, list[int]]:
    """Every shard chain of the tenant (verified): shard -> its seqs in order."""
    async with sessionmaker() as session:
        result = await verify_chain(session, tenant)
        assert result.ok, result.broken
        rows = await session.execute(
            select(AuditRecord.shard, AuditRecord.seq)
            .where(AuditRecord.tenant == tenant)
            .order_by(AuditRecord.shard, AuditRecord.seq)
        )
        chains: dict[int, list[int]] = {}
        for shard, seq in rows:
            chains.setdefault(shard, []).append(seq)
        return chains


async def _chain(sessionmaker: Sessions, tenant: str) -> list[int]:
    """The tenant's one chain (verified): its seqs in order."""
    chains = await _chains(sessionmaker, tenant)
    assert len(chains) == 1, chains
    return next(iter(chains.values()))


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


async def test_two_pools_on_one_shard_relink_on_the_head_the_function_returns(
    audit_engine: AsyncEngine, audit_sessionmaker: Sessions
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    # One shard only: neither can move away, every stale head is relinked.
    first = _appender(audit_sessionmaker, shards=1)
    second = _appender(create_sessionmaker(audit_engine), shards=1)
    await first.append([_entry(tenant, 0)])
    await second.append([_entry(tenant, 1)])  # moves the head under first's cached one
    for n in range(2, 12):
        appender = first if n % 2 else second
        await appender.append([_entry(tenant, n), _entry(tenant, n + 100)])
    assert await _chains(audit_sessionmaker, tenant) == {0: list(range(1, 23))}


async def test_two_pools_appending_at_once_to_one_shard_write_everything(
    audit_engine: AsyncEngine, audit_sessionmaker: Sessions
) -> None:
    # Heads moving under both writers all the time: the relink, then the locked path.
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    first = _appender(audit_sessionmaker, shards=1)
    second = _appender(create_sessionmaker(audit_engine), shards=1)

    async def caller(appender: ChainAppender, base: int) -> None:
        for n in range(15):
            await appender.append([_entry(tenant, base + n)])

    await asyncio.gather(*(caller(first if k % 2 else second, 100 * k) for k in range(8)))
    assert await _chains(audit_sessionmaker, tenant) == {0: list(range(1, 121))}


async def test_two_pools_on_different_shards_interleave_and_both_verify(
    audit_engine: AsyncEngine, audit_sessionmaker: Sessions
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    first = _appender(audit_sessionmaker, shard=1)
    second = _appender(create_sessionmaker(audit_engine), shard=2)
    await asyncio.gather(
        *(
            (first if n % 2 else second).append([_entry(tenant, n), _entry(tenant, n + 100)])
            for n in range(40)
        )
    )
    chains = await _chains(audit_sessionmaker, tenant)
    assert chains == {1: list(range(1, 41)), 2: list(range(1, 41))}
    assert (first.shard_for(tenant), second.shard_for(tenant)) == (1, 2)  # never contended


async def test_writers_that_meet_on_a_shard_move_apart(
    audit_engine: AsyncEngine, audit_sessionmaker: Sessions
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    first = _appender(audit_sessionmaker, shard=3)
    second = _appender(create_sessionmaker(audit_engine), shard=3)
    await first.append([_entry(tenant, 0)])
    await second.append([_entry(tenant, 1)])  # learns shard 3's head: not yet a meeting
    await first.append([_entry(tenant, 2)])  # its cached head moved: another writer is here
    assert first.shard_for(tenant) != 3
    assert second.shard_for(tenant) == 3
    for n in range(3, 9):
        await (first if n % 2 else second).append([_entry(tenant, n)])
    chains = await _chains(audit_sessionmaker, tenant)  # every chain verifies
    assert chains[3][:3] == [1, 2, 3]
    assert sum(len(seqs) for seqs in chains.values()) == 9
    # The second meets the first's record on shard 3 in its turn and moves too (to a random
    # other shard): at most one more chain. (If it lands on the first's new shard, they meet
    # again there and both move on after writing, so where each writes next is not asserted.)
    assert len(chains) <= 3
    assert len(chains[3]) >= 4  # the second writes entry 4 there before it meets the first's


async def test_one_append_is_one_statement_outside_a_transaction_block(
    audit_settings: Settings,
) -> None:
    # One pooled connection, so the driver-level query log sees every statement the appender
    # sends (it goes to asyncpg directly, below SQLAlchemy's events).
    engine = create_engine(audit_settings.db.model_copy(update={"pool_size": 1, "max_overflow": 0}))
    try:
        sessionmaker = create_sessionmaker(engine)
        tenant = f"t-{uuid.uuid4().hex[:10]}"
        appender = _appender(sessionmaker)
        await appender.append([_entry(tenant, 0)])  # learns the head; prepares the statement
        statements: list[str] = []
        raw = await engine.raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        driver.add_query_logger(lambda record: statements.append(record.query))
        raw.close()
        await appender.append([_entry(tenant, 1), _entry(tenant, 2)])
        assert len(statements) == 1, statements  # no BEGIN, no COMMIT: one implicit transaction
        assert ".audit_append(" in statements[0]
        assert not driver.is_in_transaction()
        assert await _chain(sessionmaker, tenant) == [1, 2, 3]
    finally:
        await engine.dispose()


async def test_a_held_chain_lock_ends_in_audit_unavailable_after_the_lock_timeout(
    audit_engine: AsyncEngine,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    sessionmaker = create_sessionmaker(audit_engine)
    # The recorder's appender of this sessionmaker, created first with a short lock timeout.
    appender = appender_for(sessionmaker, lock_timeout_ms=200, statement_timeout_ms=5000)
    shard = appender.shard_for(tenant)
    async with audit_engine.connect() as holder:
        await holder.execute(
            text("SELECT pg_advisory_lock(hashtextextended(:key, 0))"),
            {"key": lock_key(tenant, shard)},
        )
        try:
            with pytest.raises(AuditUnavailable) as caught:
                await record_security_event(
                    sessionmaker, action="patient:read", outcome="success", tenant=tenant
                )
        finally:
            await holder.execute(
                text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))"),
                {"key": lock_key(tenant, shard)},
            )
            await holder.commit()
    cause = caught.value.__cause__
    assert isinstance(cause, DBAPIError)
    assert getattr(cause.orig, "sqlstate", None) == "55P03"  # lock_not_available
    # The lock timeout was local to the call: the connection it ran on is back in the pool
    # with the server default, and the next append goes through.
    async with audit_engine.connect() as connection:
        assert (await connection.execute(text("SHOW lock_timeout"))).scalar_one() == "0"
    await record_security_event(
        sessionmaker, action="patient:read", outcome="success", tenant=tenant
    )
    assert await _chain(sessionmaker, tenant) == [1]


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
