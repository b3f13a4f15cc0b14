"""Fixtures for the FHIR client against the real HAPI (started by the test command).

``fhir``         one FhirClient for the whole session (like the app's), closed at the end; the
                 suite runs once per HTTP backend (httpx's own transport, then aiohttp)
``tenant_fhir``  bound to the default partition (``DEFAULT``)
``hapi_cleanup`` session teardown deleting everything tagged ``urn:ehr:test|<run_id>``
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ehr.core.config import Settings
from ehr.fhir import FhirClient, TenantFhirClient
from ehr.fhir.bundles import bundle_resources

# Dependants first, so HAPI's referential integrity never blocks a delete.
CLEANUP_ORDER = ("Observation", "Encounter", "Patient")


@pytest.fixture(scope="session", params=["httpcore", "aiohttp"])
async def fhir(
    settings: Settings, run_id: str, request: pytest.FixtureRequest
) -> AsyncIterator[FhirClient]:
    client = FhirClient(settings.fhir, http_backend=request.param)
    await client.ping()  # a missing HAPI is a failure, not a skip
    try:
        yield client
    finally:
        await _delete_tagged(client.for_tenant(settings.fhir.default_tenant), run_id)
        await client.aclose()


@pytest.fixture
def tenant_fhir(fhir: FhirClient) -> TenantFhirClient:
    return fhir.for_tenant(fhir.default_tenant)


async def _delete_tagged(tenant_fhir: TenantFhirClient, run_id: str) -> None:
    """Delete every resource this run created (found by its meta.tag), then check none is left."""
    tag = f"urn:ehr:test|{run_id}"
    for resource_type in CLEANUP_ORDER:
        bundle = await tenant_fhir.search(
            resource_type, {"_tag": tag, "_count": 500, "_elements": "id"}
        )
        for resource in bundle_resources(bundle, resource_type):
            await tenant_fhir.delete(resource_type, resource["id"])  # idempotent in HAPI
    for resource_type in CLEANUP_ORDER:
        left = await tenant_fhir.search(resource_type, {"_tag": tag, "_summary": "count"})
        assert left.get("total") == 0, f"{resource_type} left behind by run {run_id}"
