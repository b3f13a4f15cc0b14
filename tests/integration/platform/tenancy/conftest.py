"""Fixtures for tenancy against the real PostgreSQL and HAPI.

``fhir``             a FhirClient on the real HAPI (operator view: any partition)
``new_slug``         ``new_slug("x")``: a slug unique to this run; every tenant made with one is
                     removed at the end (HAPI test data, partition, rows)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from support.database import Sessions
from support.tenants import remove_tenants

from ehr.core.config import Settings
from ehr.fhir import FhirClient


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
    run_id: str, fhir: FhirClient, db: Sessions
) -> AsyncIterator[Callable[[str], str]]:
    made: list[str] = []

    def make(label: str) -> str:
        slug = f"t-{run_id[4:]}-{label}"
        made.append(slug)
        return slug

    yield make
    await remove_tenants(made, fhir, db)
