"""Fixtures for the FHIR client unit tests: a client pointed at a fake HAPI mocked by respx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import respx
from fhir_factories import BASE_URL

from ehr.core.config import FhirSettings
from ehr.fhir import FhirClient, TenantFhirClient


@pytest.fixture
def fhir_settings() -> FhirSettings:
    return FhirSettings(base_url=BASE_URL, connect_timeout_seconds=0.5, timeout_seconds=1.0)


@pytest.fixture
def hapi() -> Iterator[respx.MockRouter]:
    """respx standing in for HAPI; any request without a matching route fails the test.

    ``using="httpx"`` intercepts at the httpx client, so it works whatever the HTTP backend.
    """
    with respx.mock(using="httpx", assert_all_mocked=True, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def fhir_client(fhir_settings: FhirSettings) -> AsyncIterator[FhirClient]:
    client = FhirClient(fhir_settings)
    yield client
    await client.aclose()


@pytest.fixture
def tenant_fhir(fhir_client: FhirClient) -> TenantFhirClient:
    return fhir_client.for_tenant("DEFAULT")
