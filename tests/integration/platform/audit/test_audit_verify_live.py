"""Tampering with the stored audit trail is detected (function and ``ehr audit verify``).

The tests edit rows as the table owner would: disable the append-only trigger, change a row,
re-enable it — all inside the throwaway schema (see conftest).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from support.audit_trail import new_tenant, records_of
from support.database import Sessions

from ehr.platform.audit.chain import verify_chain
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


async def _tamper(engine: AsyncEngine, schema: str, statement: str, tenant: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(f'SET LOCAL search_path TO "{schema}"'))
        await connection.execute(
            text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        )
        for part in statement.split(";"):
            await connection.execute(text(part), {"tenant": tenant})
        await connection.execute(text(f"ALTER TABLE audit_log ENABLE TRIGGER {TRIGGER}"))


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
    assert output.startswith("OK: 5 records")


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
    records = {r.seq: r.id for r in await records_of(audit_sessionmaker, tenant)}
    await _tamper(audit_engine, audit_schema, statement, tenant)

    async with audit_sessionmaker() as session:
        result = await verify_chain(session, tenant)
    assert not result.ok
    assert result.broken is not None
    assert (result.broken.tenant, result.broken.seq, result.broken.problem) == (
        tenant,
        seq,
        problem,
    )
    if problem != "prev_hash_mismatch":
        assert result.broken.record_id == records[seq]

    status, output = await _cli(audit_schema, "--tenant", tenant)
    assert status == 1, output
    assert output.startswith("BROKEN:")
    assert f"tenant={tenant} seq={seq} id={result.broken.record_id}: {problem}" in output
    # Without --tenant every chain is checked, and a broken one fails the whole run.
    status_all, output_all = await _cli(audit_schema)
    assert status_all == 1, output_all
    assert "BROKEN:" in output_all


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
