"""The tenant registry: a row in ``tenants`` plus a HAPI partition, created idempotently.

``create_tenant`` is safe to re-run and to run concurrently:

- a transaction-scoped PostgreSQL advisory lock serialises tenant creation, so partition ids
  (``max + 1`` over our rows and HAPI's partitions) are never handed out twice;
- an existing row is returned as it is, after making sure its partition exists in HAPI;
- a partition HAPI already has under the slug (e.g. our transaction rolled back after HAPI
  created it) is adopted with its id.

The caller owns the transaction (commit after success). Tenants are never deleted: disabling one
makes the authentication dependency refuse its users and API keys; its partition and data stay.
Disabling and enabling mark the tenant changed for authentication's caches
(:func:`~ehr.platform.auth.principal_cache.principal_changed`: acted on when the transaction
commits; the caller then runs ``await publish_principal_changes(redis)`` so other processes drop
their entries at once too).
"""

# The names follow ehr.core.errors (an HTTP meaning, not an "...Error" suffix).
# ruff: noqa: N818

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

import structlog
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import Tenant
from ehr.core.errors import BadRequestError, ConflictError, NotFoundError
from ehr.fhir import FhirClient
from ehr.platform.auth.principal_cache import principal_changed
from ehr.platform.tenancy.partitions import (
    PartitionIdTaken,
    PartitionNameTaken,
    create_partition,
    list_partitions,
)

logger = structlog.get_logger(__name__)

# Same rule as the tenants.slug_format check constraint (and a valid HAPI partition name).
SLUG_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
# Names that would be confused with HAPI's own partition or our system tenant.
RESERVED_SLUGS: Final = frozenset({"default", "all", "system", "metadata"})
# Any constant: the key of the advisory lock that serialises tenant creation.
_CREATE_LOCK_KEY: Final = 0x7E4A_1701
_MAX_ID_ATTEMPTS: Final = 5


class InvalidTenantSlug(BadRequestError):
    code = "invalid_tenant_slug"
    title = "Invalid tenant slug"


class TenantNotFound(NotFoundError):
    code = "tenant_not_found"
    title = "Tenant not found"


class TenantConflict(ConflictError):
    code = "tenant_conflict"
    title = "Tenant conflict"


def validate_slug(slug: str) -> str:
    """``slug`` if it is a valid, unreserved tenant slug, else :class:`InvalidTenantSlug`."""
    if not isinstance(slug, str) or not SLUG_PATTERN.fullmatch(slug):
        raise InvalidTenantSlug(
            "A tenant slug is 2-63 lowercase letters, digits or '-', starting with a letter or "
            "digit"
        )
    if slug in RESERVED_SLUGS:
        raise InvalidTenantSlug(f"The tenant slug '{slug}' is reserved")
    return slug


async def get_tenant_by_slug(session: AsyncSession, slug: str) -> Tenant:
    tenant = await session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise TenantNotFound(f"No tenant '{slug}'")
    return tenant


async def list_tenants(session: AsyncSession) -> list[Tenant]:
    return list((await session.scalars(select(Tenant).order_by(Tenant.slug))).all())


async def _ensure_partition(fhir: FhirClient, tenant: Tenant) -> None:
    try:
        await create_partition(
            fhir, partition_id=tenant.partition_id, name=tenant.slug, description=tenant.name
        )
    except PartitionNameTaken:
        partitions = {p.name: p.id for p in await list_partitions(fhir)}
        if partitions.get(tenant.slug) != tenant.partition_id:
            raise TenantConflict(
                f"HAPI partition '{tenant.slug}' exists with another id than the tenant's"
            ) from None
    except PartitionIdTaken:
        raise TenantConflict(
            f"HAPI partition id {tenant.partition_id} belongs to another partition"
        ) from None


async def create_tenant(
    session: AsyncSession, fhir: FhirClient, *, slug: str, name: str
) -> tuple[Tenant, bool]:
    """The tenant ``slug`` (created with its HAPI partition if new) and whether it was created."""
    validate_slug(slug)
    name = name.strip()
    if not name or len(name) > 200:
        raise BadRequestError("A tenant name is 1-200 characters")
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATE_LOCK_KEY})
    existing = await session.scalar(select(Tenant).where(Tenant.slug == slug))
    if existing is not None:
        await _ensure_partition(fhir, existing)
        return existing, False

    partitions = await list_partitions(fhir)
    used_ids = set((await session.scalars(select(Tenant.partition_id))).all())
    adopted = next((p.id for p in partitions if p.name == slug), None)
    if adopted is not None and adopted in used_ids:
        raise TenantConflict(f"HAPI partition '{slug}' has an id another tenant uses")
    db_max = await session.scalar(select(func.max(Tenant.partition_id))) or 0
    next_id = max([db_max, *(p.id for p in partitions)], default=0) + 1

    partition_id = adopted
    for _attempt in range(_MAX_ID_ATTEMPTS):
        if partition_id is not None:
            break
        try:
            await create_partition(fhir, partition_id=next_id, name=slug, description=name)
            partition_id = next_id
        except PartitionIdTaken:
            next_id += 1  # created outside our registry meanwhile: take the next one
        except PartitionNameTaken:
            # Someone created it between our listing and now: adopt it.
            found = {p.name: p.id for p in await list_partitions(fhir)}
            partition_id = found.get(slug)
            if partition_id is None or partition_id in used_ids:
                raise TenantConflict(f"HAPI partition '{slug}' could not be adopted") from None
    if partition_id is None:
        raise TenantConflict("No free HAPI partition id was found")

    tenant = Tenant(slug=slug, name=name, partition_id=partition_id, status="active")
    session.add(tenant)
    await session.flush()
    logger.info(
        "tenancy.tenant.created",
        tenant=slug,
        partition_id=partition_id,
        adopted=adopted is not None,
    )
    return tenant, True


async def disable_tenant(session: AsyncSession, slug: str) -> Tenant:
    """Disable the tenant: its users and API keys are refused from now on (idempotent)."""
    tenant = await get_tenant_by_slug(session, slug)
    if tenant.status != "disabled":
        tenant.status = "disabled"
        tenant.disabled_at = datetime.now(UTC)
        await session.flush()
        principal_changed(session, tenant_ids=[tenant.id])
        logger.info("tenancy.tenant.disabled", tenant=slug)
    return tenant


async def enable_tenant(session: AsyncSession, slug: str) -> Tenant:
    """Re-enable a disabled tenant (idempotent)."""
    tenant = await get_tenant_by_slug(session, slug)
    if tenant.status != "active":
        tenant.status = "active"
        tenant.disabled_at = None
        await session.flush()
        principal_changed(session, tenant_ids=[tenant.id])
        logger.info("tenancy.tenant.enabled", tenant=slug)
    return tenant
