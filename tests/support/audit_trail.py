"""Helpers shared by the audit integration tests (imported by conftest and the tests)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.db.models import AuditRecord
from ehr.platform.auth.principal import Principal

# A value standing in for PHI in the test routes' answers: it must never appear in an error.
PHI_MARKER = "Jane Q. Secretname"

ActAs = Callable[[Principal | None], None]


def new_tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def make_principal(tenant: str, *roles: str, kind: str = "user") -> Principal:
    return Principal(
        kind=kind,  # type: ignore[arg-type]
        subject=uuid.uuid4(),
        tenant=tenant,
        tenant_id=uuid.uuid4(),
        roles=frozenset(roles),
    )


async def records_of(
    sessionmaker: async_sessionmaker[AsyncSession], tenant: str
) -> list[AuditRecord]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(AuditRecord).where(AuditRecord.tenant == tenant).order_by(AuditRecord.seq)
        )
        return list(rows)
