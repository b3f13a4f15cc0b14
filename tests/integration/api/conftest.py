"""Fixtures for the API against the real stack.

``live_fhir``         a FhirClient on the real HAPI for test set-up, checks and clean-up
``live_tenant_fhir``  bound to the default tenant
``tag_for_cleanup``   ``await tag_for_cleanup("Patient", id)``: tags a resource the API created
                      with ``urn:ehr:test|<run_id>`` ($meta-add); everything tagged is deleted at
                      the end of the session
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from ehr.core.config import Settings
from ehr.fhir import FhirClient, TenantFhirClient
from ehr.fhir.bundles import bundle_resources

# Referrers first, so HAPI's referential integrity never blocks a delete.
CLEANUP_ORDER = (
    "Observation",
    "MedicationRequest",
    "AllergyIntolerance",
    "Condition",
    "Encounter",
    "Patient",
)

TagForCleanup = Callable[[str, str], Awaitable[None]]


@pytest.fixture(scope="session")
async def live_fhir(settings: Settings, test_tag: dict[str, str]) -> AsyncIterator[FhirClient]:
    client = FhirClient(settings.fhir)
    await client.ping()  # a missing HAPI is a failure, not a skip
    try:
        yield client
    finally:
        await _delete_tagged(client.for_tenant(settings.fhir.default_tenant), test_tag)
        await client.aclose()


@pytest.fixture
def live_tenant_fhir(live_fhir: FhirClient) -> TenantFhirClient:
    return live_fhir.for_tenant(live_fhir.default_tenant)


@pytest.fixture
def tag_for_cleanup(live_tenant_fhir: TenantFhirClient, test_tag: dict[str, str]) -> TagForCleanup:
    async def tag(resource_type: str, resource_id: str) -> None:
        parameters: dict[str, Any] = {
            "resourceType": "Parameters",
            "parameter": [{"name": "meta", "valueMeta": {"tag": [test_tag]}}],
        }
        await live_tenant_fhir.operation(
            "$meta-add",
            resource_type=resource_type,
            resource_id=resource_id,
            body=parameters,
            method="POST",
        )

    return tag


async def _delete_tagged(tenant_fhir: TenantFhirClient, test_tag: dict[str, str]) -> None:
    tag = f"{test_tag['system']}|{test_tag['code']}"
    for resource_type in CLEANUP_ORDER:
        bundle = await tenant_fhir.search(
            resource_type, {"_tag": tag, "_count": "500", "_elements": "id"}
        )
        for resource in bundle_resources(bundle, resource_type):
            await tenant_fhir.delete(resource_type, resource["id"])
    for resource_type in CLEANUP_ORDER:
        left = await tenant_fhir.search(resource_type, {"_tag": tag, "_summary": "count"})
        assert left.get("total") == 0, f"{resource_type} left behind by {test_tag['code']}"
