"""Tampering with the stored audit trail is detected (functions and ``ehr audit verify``).

The tests edit rows as the table owner would: disable the append-only trigger, change a row,
re-enable it — all inside the throwaway schema (see conftest). Records go to several shard
chains; signed checkpoints catch what the chains alone cannot (a removed newest record, a
removed shard) and are themselves checked (signature, numbering).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from support.audit_trail import new_tenant, patient_read, records_of
from support.database import Sessions

from ehr.core.config import Settings
from ehr.core.db.engine import create_sessionmaker
from ehr.core.db.models import AuditCheckpoint
from ehr.platform.audit.appender import ChainAppender
from ehr.platform.audit.chain import verify_chain
from ehr.platform.audit.checkpoints import run_checkpoints, verify_trail, write_checkpoints
from ehr.platform.audit.dependencies import record_security_event

pytestmark = pytest.mark.integration

TRIGGER = "audit_log_append_only"
EHR = str(Path(sys.executable).parent / "ehr")


async def _chain_of(sessionmaker: Sessions, count: int = 5) -> str:
    tenant = new_tenant()
    for i in range(count):
        await record_security_event(
            sessionmaker,
            action="patient:read",
            outcome="success",
            tenant=tenant,
            actor_type="user",
            actor_id=f"u-{i}",
            patient_id=f"p-{i}",
        )
    return tenant


async def _tamper(
    engine: AsyncEngine,
    schema: str,
    statement: str,
    tenant: str,
    *,
    table: str = "audit_log",
    trigger: str = TRIGGER,
) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(f'SET LOCAL search_path TO "{schema}"'))
        await connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}"))
        for part in statement.split(";"):
            await connection.execute(text(part), {"tenant": tenant})
        await connection.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}"))


async def _sharded(engine: AsyncEngine, tenant: str, shards: dict[int, int]) -> None:
    """``shards[n]`` records of ``tenant`` on shard ``n``, each written by its own appender."""
    for shard, count in shards.items():
        appender = ChainAppender(
            create_sessionmaker(engine),
            lock_timeout_ms=3000,
            statement_timeout_ms=5000,
            shard=shard,
        )
        for n in range(count):
            await appender.append([patient_read(tenant, f"p-{shard}-{n}")])


async def _checkpoint(sessionmaker: Sessions, settings: Settings, tenant: str) -> None:
    async with sessionmaker() as session, session.begin():
        written = await write_checkpoints(session, settings, tenant=tenant)
    assert written is not None
    assert [checkpoint.tenant for checkpoint in written] == [tenant]


async def _trail(sessionmaker: Sessions, settings: Settings, tenant: str) -> tuple[bool, str]:
    """verify_trail's verdict: (ok, the break described)."""
    async with sessionmaker() as session:
        result = await verify_trail(session, settings, tenant)
    return result.ok, result.broken.describe() if result.broken is not None else ""


async def _cli(schema: str, *args: str, command: str = "verify") -> tuple[int, str]:
    env = {**os.environ, "EHR_DB__APP_SCHEMA": schema, "EHR_LOG__LEVEL": "ERROR"}
    process = await asyncio.create_subprocess_exec(
        EHR,
        "audit",
        command,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    return int(process.returncode or 0), output.decode()


async def test_an_intact_chain_verifies(audit_sessionmaker: Sessions, audit_schema: str) -> None:
    tenant = await _chain_of(audit_sessionmaker)
    async with audit_sessionmaker() as session:
        result = await verify_chain(session, tenant)
    assert result.ok
    assert result.records_checked == 5
    status, output = await _cli(audit_schema, "--tenant", tenant)
    assert status == 0, output
    assert output.startswith("OK: 5 records in 1 chain(s) of 1 tenant(s), 0 checkpoint(s)")
    assert f"  {tenant}: 5 record(s) in 1 shard chain(s)" in output


@pytest.mark.parametrize(
    ("statement", "seq", "problem"),
    [
        # An edited field (the hash no longer matches).
        (
            "UPDATE audit_log SET patient_id = 'p-other' WHERE tenant = :tenant AND seq = 3",
            3,
            "hash_mismatch",
        ),
        (
            "UPDATE audit_log SET outcome = 'denied' WHERE tenant = :tenant AND seq = 1",
            1,
            "hash_mismatch",
        ),
        (
            "UPDATE audit_log SET occurred_at = occurred_at + interval '1 second' "
            "WHERE tenant = :tenant AND seq = 5",
            5,
            "hash_mismatch",
        ),
        # A deleted row (a gap in seq).
        ("DELETE FROM audit_log WHERE tenant = :tenant AND seq = 2", 3, "seq_gap"),
        # Two rows swapped (seq reordered).
        (
            "UPDATE audit_log SET seq = -2 WHERE tenant = :tenant AND seq = 2;"
            "UPDATE audit_log SET seq = 2 WHERE tenant = :tenant AND seq = 4;"
            "UPDATE audit_log SET seq = 4 WHERE tenant = :tenant AND seq = -2",
            2,
            "prev_hash_mismatch",
        ),
    ],
)
async def test_tampering_is_detected_by_the_function_and_the_command(
    audit_engine: AsyncEngine,
    audit_sessionmaker: Sessions,
    audit_schema: str,
    statement: str,
    seq: int,
    problem: str,
) -> None:
    tenant = await _chain_of(audit_sessionmaker)
    stored = await records_of(audit_sessionmaker, tenant)
    records = {r.seq: r.id for r in stored}
    (shard,) = {r.shard for r in stored}  # one appender, one shard
    await _tamper(audit_engine, audit_schema, statement, tenant)

    async with audit_sessionmaker() as session:
        result = await verify_chain(session, tenant)
    assert not result.ok
    assert result.broken is not None
    assert (
        result.broken.tenant,
        result.broken.shard,
        result.broken.seq,
        result.broken.problem,
    ) == (tenant, shard, seq, problem)
    if problem != "prev_hash_mismatch":
        assert result.broken.record_id == records[seq]

    status, output = await _cli(audit_schema, "--tenant", tenant)
    assert status == 1, output
    assert output.startswith("BROKEN:")
    assert (
        f"tenant={tenant} shard={shard} seq={seq} id={result.broken.record_id}: {problem}" in output
    )
    # Without --tenant every chain is checked, and a broken one fails the whole run.
    status_all, output_all = await _cli(audit_schema)
    assert status_all == 1, output_all
    assert "BROKEN:" in output_all


async def test_a_tampered_record_in_any_shard_is_found_naming_the_shard(
    audit_engine: AsyncEngine,
    audit_sessionmaker: Sessions,
    audit_settings: Settings,
    audit_schema: str,
) -> None:
    tenant = new_tenant()
    await _sharded(audit_engine, tenant, {0: 3, 4: 3, 9: 3})
    await _checkpoint(audit_sessionmaker, audit_settings, tenant)
    status, output = await _cli(audit_schema, "--tenant", tenant, "--heads")
    assert status == 0, output
    assert output.startswith("OK: 9 records in 3 chain(s) of 1 tenant(s), 1 checkpoint(s)")
    assert "    shard 9: seq 3 head " in output
    await _tamper(
        audit_engine,
        audit_schema,
        "UPDATE audit_log SET resource_id = 'p-x' WHERE tenant = :tenant AND shard = 9 AND seq = 2",
        tenant,
    )
    ok, described = await _trail(audit_sessionmaker, audit_settings, tenant)
    assert not ok
    assert f"tenant={tenant} shard=9 seq=2 id=" in described
    assert ": hash_mismatch" in described
    status, output = await _cli(audit_schema, "--tenant", tenant)
    assert status == 1, output
    assert output.startswith(f"BROKEN: tenant={tenant} shard=9 seq=2 id=")


@pytest.mark.parametrize(
    ("statement", "shard", "seq"),
    [
        # The newest record of a shard: the chain alone still verifies.
        ("DELETE FROM audit_log WHERE tenant = :tenant AND shard = 3 AND seq = 4", 3, 4),
        # A whole shard.
        ("DELETE FROM audit_log WHERE tenant = :tenant AND shard = 7", 7, 2),
    ],
)
async def test_records_removed_after_a_checkpoint_are_found_through_it(
    audit_engine: AsyncEngine,
    audit_sessionmaker: Sessions,
    audit_settings: Settings,
    audit_schema: str,
    statement: str,
    shard: int,
    seq: int,
) -> None:
    tenant = new_tenant()
    await _sharded(audit_engine, tenant, {3: 4, 7: 2})
    await _checkpoint(audit_sessionmaker, audit_settings, tenant)
    await _tamper(audit_engine, audit_schema, statement, tenant)
    async with audit_sessionmaker() as session:
        assert (await verify_chain(session, tenant)).ok  # what the chains alone cannot see
    ok, described = await _trail(audit_sessionmaker, audit_settings, tenant)
    assert not ok
    assert described.startswith(
        f"tenant={tenant} shard={shard} seq={seq} checkpoint=1: missing_after_checkpoint"
    )
    status, output = await _cli(audit_schema, "--tenant", tenant)
    assert status == 1, output
    assert output.startswith(f"BROKEN: tenant={tenant} shard={shard} seq={seq} checkpoint=1")


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        (
            "UPDATE audit_checkpoints SET signature = reverse(signature) WHERE tenant = :tenant",
            "checkpoint_signature_invalid",
        ),
        # The heads changed to match a shortened chain: the signature no longer covers them.
        (
            "UPDATE audit_checkpoints SET heads = jsonb_set(heads, '{3,0}', '1') "
            "WHERE tenant = :tenant",
            "checkpoint_signature_invalid",
        ),
        (
            "UPDATE audit_checkpoints SET key_id = 'k-forged' WHERE tenant = :tenant",
            "checkpoint_key_unknown",
        ),
        ("UPDATE audit_checkpoints SET seq = 2 WHERE tenant = :tenant", "checkpoint_seq_gap"),
    ],
)
async def test_a_bad_checkpoint_is_found(
    audit_engine: AsyncEngine,
    audit_sessionmaker: Sessions,
    audit_settings: Settings,
    audit_schema: str,
    statement: str,
    problem: str,
) -> None:
    tenant = new_tenant()
    await _sharded(audit_engine, tenant, {3: 2})
    await _checkpoint(audit_sessionmaker, audit_settings, tenant)
    assert await _trail(audit_sessionmaker, audit_settings, tenant) == (True, "")
    await _tamper(
        audit_engine,
        audit_schema,
        statement,
        tenant,
        table="audit_checkpoints",
        trigger="audit_checkpoints_append_only",
    )
    ok, described = await _trail(audit_sessionmaker, audit_settings, tenant)
    assert not ok
    assert described.startswith(f"tenant={tenant} checkpoint=")
    assert f": {problem}" in described
    status, output = await _cli(audit_schema, "--tenant", tenant)
    assert status == 1, output
    assert output.startswith(f"BROKEN: tenant={tenant} checkpoint=")


async def test_checkpoints_follow_moving_heads_and_chain_together(
    audit_engine: AsyncEngine,
    audit_sessionmaker: Sessions,
    audit_settings: Settings,
    audit_schema: str,
) -> None:
    tenant = new_tenant()
    await _sharded(audit_engine, tenant, {1: 2})
    await _checkpoint(audit_sessionmaker, audit_settings, tenant)
    async with audit_sessionmaker() as session, session.begin():
        assert await write_checkpoints(session, audit_settings, tenant=tenant) == []  # unmoved
    await _sharded(audit_engine, tenant, {1: 1, 2: 1})
    status, output = await _cli(audit_schema, "--tenant", tenant, command="checkpoint")
    assert status == 0, output
    assert f"  {tenant}: checkpoint 2, 2 shard head(s), key " in output
    status, output = await _cli(audit_schema, "--tenant", tenant)
    assert status == 0, output
    assert "4 records in 2 chain(s) of 1 tenant(s), 2 checkpoint(s) verified" in output
    # Removing the first checkpoint breaks the checkpoints' own chain.
    await _tamper(
        audit_engine,
        audit_schema,
        "DELETE FROM audit_checkpoints WHERE tenant = :tenant AND seq = 1",
        tenant,
        table="audit_checkpoints",
        trigger="audit_checkpoints_append_only",
    )
    ok, described = await _trail(audit_sessionmaker, audit_settings, tenant)
    assert (ok, described.split(" (")[0]) == (
        False,
        f"tenant={tenant} checkpoint=2: checkpoint_seq_gap",
    )


async def test_the_background_task_writes_checkpoints_until_stopped(
    audit_engine: AsyncEngine, audit_sessionmaker: Sessions, audit_settings: Settings
) -> None:
    tenant = new_tenant()
    await _sharded(audit_engine, tenant, {2: 2})
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_checkpoints(audit_sessionmaker, audit_settings, stop, interval_seconds=0.05)
    )
    found: AuditCheckpoint | None = None
    try:
        for _ in range(600):  # until the first round has run (bounded)
            async with audit_sessionmaker() as session:
                found = await session.scalar(
                    select(AuditCheckpoint).where(AuditCheckpoint.tenant == tenant)
                )
            if found is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
    assert task.exception() is None
    assert found is not None
    assert list(found.heads) == ["2"]
    assert found.heads["2"][0] == 2
    assert await _trail(audit_sessionmaker, audit_settings, tenant) == (True, "")


async def test_the_export_command_writes_the_tenants_records(
    audit_sessionmaker: Sessions, audit_schema: str
) -> None:
    tenant = await _chain_of(audit_sessionmaker, count=3)
    status, output = await _cli(
        audit_schema, "--tenant", tenant, "--format", "ndjson", command="export"
    )
    assert status == 0, output
    lines = [json.loads(line) for line in output.splitlines()]
    assert [(line["tenant"], line["seq"]) for line in lines] == [
        (tenant, 1),
        (tenant, 2),
        (tenant, 3),
    ]
    status, output = await _cli(
        audit_schema, "--tenant", tenant, "--format", "fhir", command="export"
    )
    assert status == 0, output
    assert len(json.loads(output)["entry"]) == 3
