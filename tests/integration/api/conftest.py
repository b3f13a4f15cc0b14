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
from support.hapi_data import live_fhir_client

from ehr.core.config import Settings
from ehr.fhir import FhirClient, TenantFhirClient

TagForCleanup = Callable[[str, str], Awaitable[None]]


@pytest.fixture(scope="session")
async def live_fhir(settings: Settings, test_tag: dict[str, str]) -> AsyncIterator[FhirClient]:
    async with live_fhir_client(settings, test_tag) as client:
        yield client


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
