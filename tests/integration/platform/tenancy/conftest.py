"""Fixtures for tenancy against the real PostgreSQL and HAPI.

``db_sessionmaker``  sessions on the stack's app schema
``fhir``             a FhirClient on the real HAPI (operator view: any partition)
``new_slug``         ``new_slug("x")``: a slug unique to this run; every tenant made with one is
                     removed at the end (HAPI test data, partition, rows)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.core.db.models import ApiKey, Tenant, User
from ehr.fhir import FhirClient
from ehr.platform.tenancy.partitions import delete_partition, list_partitions

CLEANUP_ORDER = ("Observation", "Encounter", "Patient")


@pytest.fixture(scope="session")
async def db_sessionmaker(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.db)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
async def fhir(settings: Settings) -> AsyncIterator[FhirClient]:
    client = FhirClient(settings.fhir)
    await client.ping()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
async def new_slug(
    run_id: str,
    fhir: FhirClient,
    db_sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Callable[[str], str]]:
    made: list[str] = []

    def make(label: str) -> str:
        slug = f"t-{run_id[4:]}-{label}"
        made.append(slug)
        return slug

    yield make
    await remove_tenants(made, fhir, db_sessionmaker)


async def remove_tenants(
    slugs: list[str], fhir: FhirClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Delete what tests put in these tenants' partitions, the partitions and the rows."""
    partitions = {p.name: p.id for p in await list_partitions(fhir)}
    for slug in slugs:
        if slug not in partitions:
            continue
        tenant_fhir = fhir.for_tenant(slug)
        for resource_type in CLEANUP_ORDER:
            bundle = await tenant_fhir.search(resource_type, {"_count": "500", "_elements": "id"})
            for entry in bundle.get("entry") or []:
                await tenant_fhir.delete(resource_type, entry["resource"]["id"])
        await delete_partition(fhir, partitions[slug])
    async with sessionmaker() as session, session.begin():
        ids = list((await session.scalars(select(Tenant.id).where(Tenant.slug.in_(slugs)))).all())
        if ids:
            await session.execute(delete(ApiKey).where(ApiKey.tenant_id.in_(ids)))
            await session.execute(delete(User).where(User.tenant_id.in_(ids)))
            await session.execute(delete(Tenant).where(Tenant.id.in_(ids)))
