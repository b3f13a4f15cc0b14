"""Fixtures of the acceptance matrix: ``world`` (see authz_world.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from support.tenant_world import TenantWorld, World, make_tenant, remove_tenants

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.fhir import FhirClient


@pytest.fixture(scope="session")
async def world(settings: Settings, run_id: str) -> AsyncIterator[World]:
    engine = create_engine(settings.db)
    sessions = create_sessionmaker(engine)
    fhir = FhirClient(settings.fhir)
    made: list[str] = []
    try:
        tenants: dict[str, TenantWorld] = {}
        for label in ("a", "b"):
            made.append(f"z-{run_id[4:]}-{label}")
            tenants[label] = await make_tenant(label, run_id, sessions, fhir, settings)
        yield World(
            run=run_id, tenants=tenants, sessionmaker=sessions, fhir=fhir, settings=settings
        )
    finally:
        try:
            await remove_tenants(made, fhir, sessions)
        finally:
            await fhir.aclose()
            await engine.dispose()
