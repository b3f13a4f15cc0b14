"""The audit tests' trail: tenants of their own, callers, and the records written for them.

``new_tenant()``                      a tenant slug of the test's own (audit rows are by slug: no
                                      tenant row needed)
``records_of(sessionmaker, tenant)``  the tenant's audit records in chain order
``patient_read(tenant, patient_id)``  an entry to append: a user read that patient
``ActAs``                             the ``act_as`` fixture: ``act_as(principal)`` (a
                                      :func:`support.principals.make_principal`) is the caller of
                                      the next requests
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from ehr.core.db.models import AuditRecord
from ehr.platform.audit.chain import AuditEntry
from ehr.platform.auth.principal import Principal
from support.database import Sessions

__all__ = ["PHI_MARKER", "ActAs", "new_tenant", "patient_read", "records_of"]

# A value standing in for PHI in the test routes' answers: it must never appear in an error.
PHI_MARKER = "Jane Q. Secretname"

ActAs = Callable[[Principal | None], None]


def new_tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


async def records_of(sessionmaker: Sessions, tenant: str) -> list[AuditRecord]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(AuditRecord).where(AuditRecord.tenant == tenant).order_by(AuditRecord.seq)
        )
        return list(rows)


def patient_read(tenant: str, patient_id: str, **members: Any) -> AuditEntry:
    """A user's successful read of ``Patient/patient_id``; ``members``: the entry's others."""
    values: dict[str, Any] = {
        "tenant": tenant,
        "actor_type": "user",
        "action": "patient:read",
        "outcome": "success",
        "resource_type": "Patient",
        "resource_id": patient_id,
        "patient_id": patient_id,
    }
    return AuditEntry(**{**values, **members})
