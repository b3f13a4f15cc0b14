"""A writer killed (SIGKILL) while appends are in flight loses no acknowledged record.

An append is acknowledged when ``ChainAppender.append`` returns, which is after the one
``audit_append`` statement committed (autocommit): the request answers only then. The child
process prints each acknowledged request id; after it is killed, every printed id must be in
the trail, and every chain must still verify (a call cut off mid-way committed whole or not at
all).
"""

from __future__ import annotations

import asyncio
import os
import sys

import pytest
from sqlalchemy import select
from support.audit_trail import new_tenant
from support.database import Sessions

from ehr.core.db.models import AuditRecord
from ehr.platform.audit.chain import verify_chain

pytestmark = pytest.mark.integration

_WRITER = """
import asyncio, sys
from ehr.core.config import load_settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.platform.audit.appender import ChainAppender
from ehr.platform.audit.chain import AuditEntry

async def main(tenant):
    engine = create_engine(load_settings().db)
    appender = ChainAppender(
        create_sessionmaker(engine), lock_timeout_ms=3000, statement_timeout_ms=5000
    )

    async def caller(k):
        i = 0
        while True:
            request_id = f"{k}-{i}"
            i += 1
            entry = AuditEntry(
                tenant=tenant, actor_type="system", action="patient:read", outcome="success",
                request_id=request_id,
            )
            await appender.append([entry])
            print(request_id, flush=True)  # acknowledged: the response could go now

    await asyncio.gather(*(caller(k) for k in range(8)))

asyncio.run(main(sys.argv[1]))
"""


async def test_a_killed_writer_loses_no_acknowledged_record(
    audit_sessionmaker: Sessions, audit_schema: str
) -> None:
    tenant = new_tenant()
    env = {**os.environ, "EHR_DB__APP_SCHEMA": audit_schema, "EHR_LOG__LEVEL": "ERROR"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _WRITER, tenant, env=env, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    acknowledged: list[str] = []
    try:
        while len(acknowledged) < 300:
            line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
            assert line, "the writer ended before it was killed"
            acknowledged.append(line.decode().strip())
    finally:
        process.kill()  # SIGKILL: no cleanup, appends in flight
    rest, _ = await process.communicate()
    acknowledged.extend(line for line in rest.decode().split() if line)
    async with audit_sessionmaker() as session:
        stored = set(
            await session.scalars(
                select(AuditRecord.request_id).where(AuditRecord.tenant == tenant)
            )
        )
        result = await verify_chain(session, tenant)
    assert set(acknowledged) <= stored
    assert result.ok, result.broken
