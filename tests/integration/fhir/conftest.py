"""Fixtures for the FHIR client against the real HAPI (started by the test command).

``fhir``         one FhirClient for the whole session (like the app's), closed at the end; the
                 suite runs once per HTTP backend (httpx's own transport, then aiohttp)
``tenant_fhir``  bound to the default partition (``DEFAULT``)
At the end of the session everything tagged ``urn:ehr:test|<run_id>`` is deleted, and checked gone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from support.hapi_data import live_fhir_client

from ehr.core.config import Settings
from ehr.fhir import FhirClient, TenantFhirClient


@pytest.fixture(scope="session", params=["httpcore", "aiohttp"])
async def fhir(
    settings: Settings, test_tag: dict[str, str], request: pytest.FixtureRequest
) -> AsyncIterator[FhirClient]:
    async with live_fhir_client(settings, test_tag, http_backend=request.param) as client:
        yield client


@pytest.fixture
def tenant_fhir(fhir: FhirClient) -> TenantFhirClient:
    return fhir.for_tenant(fhir.default_tenant)
