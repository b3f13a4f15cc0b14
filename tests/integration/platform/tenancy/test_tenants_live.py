"""Tenants against the real PostgreSQL and HAPI: partition provisioning, idempotency, isolation
facts HAPI enforces for us (server-assigned ids, no references across partitions)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from support.database import Sessions

from ehr.core.errors import AppError
from ehr.fhir import FhirClient, FhirResourceNotFound
from ehr.platform.tenancy import (
    InvalidTenantSlug,
    create_tenant,
    disable_tenant,
    enable_tenant,
    get_tenant_by_slug,
    list_tenants,
)
from ehr.platform.tenancy.partitions import create_partition, list_partitions

pytestmark = pytest.mark.integration

NewSlug = Callable[[str], str]


async def _create(sessions: Sessions, fhir: FhirClient, slug: str, name: str = "Test") -> Any:
    async with sessions() as session, session.begin():
        return await create_tenant(session, fhir, slug=slug, name=name)


async def test_create_writes_the_row_and_the_partition_once(
    db: Sessions, fhir: FhirClient, new_slug: NewSlug
) -> None:
    slug = new_slug("a")
    tenant, created = await _create(db, fhir, slug, "Clinic A")
    assert created
    assert tenant.status == "active"
    partitions = {p.name: p.id for p in await list_partitions(fhir)}
    assert partitions[slug] == tenant.partition_id

    again, created_again = await _create(db, fhir, slug, "Clinic A")
    assert not created_again
    assert again.id == tenant.id
    assert again.partition_id == tenant.partition_id
    async with db() as session:
        assert slug in [t.slug for t in await list_tenants(session)]
    # The new partition answers FHIR requests (empty).
    bundle = await fhir.for_tenant(slug).search("Patient", {"_summary": "count"})
    assert bundle["total"] == 0


async def test_concurrent_creates_get_distinct_partition_ids(
    db: Sessions, fhir: FhirClient, new_slug: NewSlug
) -> None:
    slugs = [new_slug(f"c{i}") for i in range(3)]
    results = await asyncio.gather(*(_create(db, fhir, s) for s in slugs))
    ids = [tenant.partition_id for tenant, _ in results]
    assert len(set(ids)) == 3
    partitions = {p.name: p.id for p in await list_partitions(fhir)}
    assert [partitions[s] for s in slugs] == ids


async def test_a_partition_hapi_already_has_is_adopted(
    db: Sessions, fhir: FhirClient, new_slug: NewSlug
) -> None:
    slug = new_slug("adopt")
    taken = max((p.id for p in await list_partitions(fhir)), default=0) + 50
    await create_partition(fhir, partition_id=taken, name=slug, description="pre-existing")
    tenant, created = await _create(db, fhir, slug)
    assert created
    assert tenant.partition_id == taken


@pytest.mark.parametrize("slug", ["A-upper", "-lead", "x", "default", "bad_underscore", "a" * 64])
async def test_invalid_slugs_are_refused_before_anything_is_written(
    db: Sessions, fhir: FhirClient, slug: str
) -> None:
    before = len(await list_partitions(fhir))
    with pytest.raises(InvalidTenantSlug):
        await _create(db, fhir, slug)
    assert len(await list_partitions(fhir)) == before


async def test_disable_and_enable(db: Sessions, fhir: FhirClient, new_slug: NewSlug) -> None:
    slug = new_slug("dis")
    await _create(db, fhir, slug)
    async with db() as session, session.begin():
        tenant = await disable_tenant(session, slug)
        assert tenant.status == "disabled"
        assert tenant.disabled_at is not None
    async with db() as session, session.begin():
        assert (await get_tenant_by_slug(session, slug)).status == "disabled"
        assert (await enable_tenant(session, slug)).status == "active"


async def test_ids_are_server_assigned_and_references_stay_in_the_partition(
    db: Sessions, fhir: FhirClient, new_slug: NewSlug, run_id: str
) -> None:
    slug_a, slug_b = new_slug("ra"), new_slug("rb")
    await _create(db, fhir, slug_a)
    await _create(db, fhir, slug_b)
    fhir_a, fhir_b = fhir.for_tenant(slug_a), fhir.for_tenant(slug_b)
    patient_b = await fhir_b.create({"resourceType": "Patient", "name": [{"family": run_id}]})

    # B's patient does not exist as seen from A.
    with pytest.raises(FhirResourceNotFound):
        await fhir_a.read("Patient", patient_b["id"])
    found = await fhir_a.search("Patient", {"_id": patient_b["id"]})
    assert not found.get("entry")

    # A resource in A referencing B's patient is refused.
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "test"},
        "subject": {"reference": f"Patient/{patient_b['id']}"},
    }
    with pytest.raises(AppError) as refused:
        await fhir_a.create(observation)
    assert 400 <= refused.value.status_code < 500

    # Clients cannot choose ids (no PUT-to-create), in either partition.
    with pytest.raises(AppError) as chosen:
        await fhir_a.update({"resourceType": "Patient", "id": f"chosen-{run_id}"})
    assert 400 <= chosen.value.status_code < 500
