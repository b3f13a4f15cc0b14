"""Tenants made by tests, and their removal.

``remove_tenants(slugs, fhir, sessions)``  the tenants' HAPI data (optionally only the run's
                                           tagged resources), their partitions and their rows
:class:`TenantRows`                        tenant rows without a HAPI partition (for tests that
                                           never read FHIR), removed with :meth:`~TenantRows.remove`

Rows go with what hangs off them: revoked tokens of their users, API keys, users; the rest
(role grants, sessions, MFA, CDS clients and feedback, policies) cascades in PostgreSQL. Audit
records stay: the audit log is append-only.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sqlalchemy import delete, select

from ehr.core.db.models import ApiKey, RevokedToken, Tenant, User
from ehr.fhir import FhirClient
from ehr.platform.tenancy.partitions import delete_partition, list_partitions
from support.database import Sessions
from support.hapi_data import delete_resources

__all__ = ["MakeTenant", "TenantRows", "remove_tenant_rows", "remove_tenants"]

MakeTenant = Callable[..., Awaitable[Tenant]]


async def remove_tenant_rows(
    sessions: Sessions, *, slugs: Iterable[str] = (), ids: Iterable[uuid.UUID] = ()
) -> None:
    """Delete the tenants named by slug or id, their users and keys."""
    wanted_slugs, wanted_ids = list(slugs), list(ids)
    async with sessions() as session, session.begin():
        if wanted_slugs:
            found = await session.scalars(select(Tenant.id).where(Tenant.slug.in_(wanted_slugs)))
            wanted_ids.extend(found.all())
        if not wanted_ids:
            return
        users = select(User.id).where(User.tenant_id.in_(wanted_ids))
        await session.execute(delete(RevokedToken).where(RevokedToken.user_id.in_(users)))
        await session.execute(delete(ApiKey).where(ApiKey.tenant_id.in_(wanted_ids)))
        await session.execute(delete(User).where(User.tenant_id.in_(wanted_ids)))
        await session.execute(delete(Tenant).where(Tenant.id.in_(wanted_ids)))


async def remove_tenants(
    slugs: list[str],
    fhir: FhirClient,
    sessions: Sessions,
    *,
    tag: dict[str, str] | None = None,
) -> None:
    """Delete what tests put in these tenants' partitions (only what carries ``tag``, if given),
    the partitions and the rows. A slug without a partition is skipped on the HAPI side."""
    partitions = {p.name: p.id for p in await list_partitions(fhir)}
    for slug in slugs:
        if slug not in partitions:
            continue
        await delete_resources(fhir.for_tenant(slug), tag=tag)
        await delete_partition(fhir, partitions[slug])
    await remove_tenant_rows(sessions, slugs=slugs)


class TenantRows:
    """``await rows(**overrides)``: an active Tenant row with a slug unique to the run and no HAPI
    partition (authentication never reads FHIR); ``await rows.remove()`` deletes every one."""

    def __init__(self, sessions: Sessions, *, slug_prefix: str, name: str) -> None:
        self.sessions = sessions
        self.slug_prefix = slug_prefix
        self.name = name
        self.made: list[uuid.UUID] = []

    async def __call__(self, **overrides: Any) -> Tenant:
        values: dict[str, Any] = {
            "id": uuid.uuid4(),
            "slug": f"{self.slug_prefix}-{len(self.made)}",
            "partition_id": random.randint(1_500_000_000, 2_000_000_000),
            "name": self.name,
            "status": "active",
        }
        values.update(overrides)
        tenant = Tenant(**values)
        async with self.sessions() as session, session.begin():
            session.add(tenant)
        self.made.append(tenant.id)
        return tenant

    async def remove(self) -> None:
        await remove_tenant_rows(self.sessions, ids=self.made)
