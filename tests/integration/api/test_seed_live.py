"""The demo seed against the real HAPI: running it twice creates nothing the second time."""

from __future__ import annotations

import pytest

from ehr.fhir import TenantFhirClient
from ehr.seed import DEMO_MRN_SYSTEM, remove_demo_data, seed_demo_data

pytestmark = pytest.mark.integration


async def _demo_patients(fhir: TenantFhirClient) -> int:
    bundle = await fhir.search(
        "Patient", {"identifier": f"{DEMO_MRN_SYSTEM}|", "_summary": "count"}
    )
    total = bundle["total"]
    assert isinstance(total, int)
    return total


async def test_seed_twice_does_not_duplicate(
    live_tenant_fhir: TenantFhirClient, test_tag: dict[str, str]
) -> None:
    already_seeded = await _demo_patients(live_tenant_fhir)  # a developer's demo data stays
    try:
        first = await seed_demo_data(live_tenant_fhir, extra_tags=[test_tag])
        second = await seed_demo_data(live_tenant_fhir, extra_tags=[test_tag])
        assert first.patients == second.patients == 5
        assert await _demo_patients(live_tenant_fhir) == 5
        assert second.created_total == 0
        assert second.existing_total == first.created_total + first.existing_total
        assert second.existing["Patient"] == 5
        assert second.existing["Observation"] > 0
        observations = await live_tenant_fhir.search(
            "Observation", {"identifier": "urn:ehr:demo:observation|", "_summary": "count"}
        )
        assert observations["total"] == second.existing["Observation"]
    finally:
        if already_seeded == 0:
            await remove_demo_data(live_tenant_fhir)
            assert await _demo_patients(live_tenant_fhir) == 0
