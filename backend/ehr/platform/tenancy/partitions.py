"""HAPI partition management through the FHIR client (``$partition-management-*`` operations).

Partitions are managed in HAPI's ``DEFAULT`` partition; this module is the only place that knows
the operations' names and their ``Parameters`` shapes. HAPI's answers we rely on (checked against
the running server, HAPI 8.x):

- create with a name that exists → 400 ``HAPI-1309`` ("Partition name ... is already defined");
- create with an id that exists → 400 ``HAPI-2366`` ("Partition ID already exists");
- list → ``Parameters`` with one ``partition`` parameter per partition (parts ``id``, ``name``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import structlog

from ehr.fhir import FhirBadRequest, FhirClient, TenantFhirClient
from ehr.fhir.errors import hapi_message_code

__all__ = [
    "MANAGEMENT_PARTITION",
    "Partition",
    "PartitionIdTaken",
    "PartitionNameTaken",
    "create_partition",
    "delete_partition",
    "list_partitions",
]

logger = structlog.get_logger(__name__)

# Partition management operations are served by HAPI's default partition only.
MANAGEMENT_PARTITION: Final = "DEFAULT"
_NAME_TAKEN: Final = "HAPI-1309"
_ID_TAKEN: Final = "HAPI-2366"


@dataclass(frozen=True, slots=True)
class Partition:
    id: int
    name: str


class PartitionNameTaken(Exception):  # noqa: N818 - a condition, handled inside this package
    """HAPI already has a partition with this name."""


class PartitionIdTaken(Exception):  # noqa: N818 - a condition, handled inside this package
    """HAPI already has a partition with this id (under another name)."""


def _management(fhir: FhirClient) -> TenantFhirClient:
    return fhir.for_tenant(MANAGEMENT_PARTITION)


def _hapi_code(exc: FhirBadRequest) -> str | None:
    outcome = exc.extra.get("operation_outcome")
    return hapi_message_code(outcome if isinstance(outcome, Mapping) else None)


async def create_partition(
    fhir: FhirClient, *, partition_id: int, name: str, description: str
) -> None:
    """Create the partition; :class:`PartitionNameTaken` / :class:`PartitionIdTaken` if either
    already exists in HAPI."""
    body: dict[str, Any] = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "id", "valueInteger": partition_id},
            {"name": "name", "valueCode": name},
            {"name": "description", "valueString": description},
        ],
    }
    try:
        await _management(fhir).operation(
            "$partition-management-create-partition", body=body, method="POST"
        )
    except FhirBadRequest as exc:
        code = _hapi_code(exc)
        if code == _NAME_TAKEN:
            raise PartitionNameTaken(name) from exc
        if code == _ID_TAKEN:
            raise PartitionIdTaken(str(partition_id)) from exc
        raise
    logger.info("tenancy.partition.created", tenant=name, partition_id=partition_id)


async def list_partitions(fhir: FhirClient) -> list[Partition]:
    """Every partition HAPI knows (besides ``DEFAULT``)."""
    result = await _management(fhir).operation("$partition-management-list-partitions")
    partitions: list[Partition] = []
    for parameter in result.get("parameter") or []:
        if not isinstance(parameter, Mapping) or parameter.get("name") != "partition":
            continue
        parts = {
            part.get("name"): part
            for part in parameter.get("part") or []
            if isinstance(part, Mapping)
        }
        pid = (parts.get("id") or {}).get("valueInteger")
        pname = (parts.get("name") or {}).get("valueCode")
        if isinstance(pid, int) and isinstance(pname, str):
            partitions.append(Partition(id=pid, name=pname))
    return partitions


async def delete_partition(fhir: FhirClient, partition_id: int) -> None:
    """Delete a partition (test clean-up; tenants themselves are disabled, never deleted)."""
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "id", "valueInteger": partition_id}],
    }
    await _management(fhir).operation(
        "$partition-management-delete-partition", body=body, method="POST"
    )
    logger.info("tenancy.partition.deleted", partition_id=partition_id)
