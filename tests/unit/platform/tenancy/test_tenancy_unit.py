"""Tenant slugs and the partition-management calls, against a respx-mocked HAPI."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import respx

from ehr.core.config import FhirSettings
from ehr.fhir import FhirBadRequest, FhirClient
from ehr.platform.tenancy import InvalidTenantSlug, validate_slug
from ehr.platform.tenancy.partitions import (
    Partition,
    PartitionIdTaken,
    PartitionNameTaken,
    create_partition,
    list_partitions,
)

BASE = "http://127.0.0.1:9/fhir"
MANAGEMENT = f"{BASE}/DEFAULT"


@pytest.fixture
def hapi() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def fhir() -> FhirClient:
    return FhirClient(FhirSettings(base_url=BASE, timeout_seconds=1.0))


@pytest.mark.parametrize("slug", ["demo", "clinic-7", "a1", "0-north", "x" * 63])
def test_valid_slugs(slug: str) -> None:
    assert validate_slug(slug) == slug


@pytest.mark.parametrize(
    "slug", ["", "a", "Demo", "-demo", "de_mo", "de mo", "x" * 64, "default", "all", "dé"]
)
def test_invalid_or_reserved_slugs(slug: str) -> None:
    with pytest.raises(InvalidTenantSlug):
        validate_slug(slug)


def _outcome(diagnostics: str) -> dict[str, object]:
    issue = {"severity": "error", "code": "processing", "diagnostics": diagnostics}
    return {"resourceType": "OperationOutcome", "issue": [issue]}


async def test_create_partition_posts_parameters_to_default(
    hapi: respx.MockRouter, fhir: FhirClient
) -> None:
    route = hapi.post(f"{MANAGEMENT}/$partition-management-create-partition").respond(
        200, json={"resourceType": "Parameters"}
    )
    await create_partition(fhir, partition_id=7, name="clinic-7", description="Clinic 7")
    sent = json.loads(route.calls.last.request.content)
    assert sent == {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "id", "valueInteger": 7},
            {"name": "name", "valueCode": "clinic-7"},
            {"name": "description", "valueString": "Clinic 7"},
        ],
    }


@pytest.mark.parametrize(
    ("diagnostics", "error"),
    [
        ('HAPI-1309: Partition name "clinic-7" is already defined', PartitionNameTaken),
        ("HAPI-2366: Partition ID already exists", PartitionIdTaken),
        ("HAPI-9999: something else", FhirBadRequest),
    ],
)
async def test_create_partition_classifies_hapi_refusals(
    hapi: respx.MockRouter, fhir: FhirClient, diagnostics: str, error: type[Exception]
) -> None:
    hapi.post(f"{MANAGEMENT}/$partition-management-create-partition").respond(
        400, json=_outcome(diagnostics)
    )
    with pytest.raises(error):
        await create_partition(fhir, partition_id=7, name="clinic-7", description="x")


async def test_list_partitions_parses_parameters(hapi: respx.MockRouter, fhir: FhirClient) -> None:
    def partition(pid: int, name: str) -> dict[str, object]:
        return {
            "name": "partition",
            "part": [{"name": "id", "valueInteger": pid}, {"name": "name", "valueCode": name}],
        }

    hapi.get(f"{MANAGEMENT}/$partition-management-list-partitions").respond(
        json={
            "resourceType": "Parameters",
            "parameter": [partition(1, "demo"), partition(4, "clinic-7"), {"name": "other"}],
        }
    )
    assert await list_partitions(fhir) == [Partition(1, "demo"), Partition(4, "clinic-7")]
    hapi.get(f"{MANAGEMENT}/$partition-management-list-partitions").respond(
        json={"resourceType": "Parameters"}
    )
    assert await list_partitions(fhir) == []
