"""Test data in the real HAPI: a client that removes the run's data at the end, and removal of a
partition's resources or of those carrying the run's tag.

Referrers are deleted before what they refer to (:data:`CLEANUP_ORDER`), so HAPI's referential
integrity never blocks a delete.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from ehr.core.config import Settings
from ehr.fhir import FhirClient, TenantFhirClient
from ehr.fhir.bundles import bundle_resources
from ehr.fhir.errors import FhirConflict
from ehr.fhir.transport import HttpBackend

__all__ = [
    "CLEANUP_ORDER",
    "delete_resources",
    "delete_tagged",
    "delete_with_retries",
    "live_fhir_client",
    "tag_search",
]

# Every type the tests create, referrers first.
CLEANUP_ORDER = (
    "Provenance",
    "MessageHeader",
    "DetectedIssue",
    "Task",
    "MedicationDispense",
    "DocumentReference",
    "DiagnosticReport",
    "Observation",
    "RequestGroup",
    "ServiceRequest",
    "MedicationRequest",
    "PlanDefinition",
    "MedicationStatement",
    "AllergyIntolerance",
    "Condition",
    "Immunization",
    "Appointment",
    "Encounter",
    "RelatedPerson",
    "Coverage",
    "Location",
    "Medication",
    "Patient",
    "PractitionerRole",
    "Practitioner",
    "Organization",
)


def tag_search(tag: dict[str, str]) -> str:
    """``system|code`` of a ``meta.tag`` coding, as the ``_tag`` search parameter takes it."""
    return f"{tag['system']}|{tag['code']}"


async def delete_resources(
    tenant_fhir: TenantFhirClient,
    *,
    tag: dict[str, str] | None = None,
    order: Sequence[str] = CLEANUP_ORDER,
) -> None:
    """Delete the resources of ``order``'s types in the partition (only those tagged ``tag``).

    Searches are single-page (``Cache-Control: no-store``): HAPI reuses a cached identical search
    for a minute otherwise, which can hide what was written since. A delete HAPI refuses with a
    conflict (HAPI-0550 or a version conflict: it raced HAPI's own work, more often on a loaded
    machine) is repeated with backoff (about 7 s in all) before the conflict is raised.
    """
    # A search answers at most HAPI's max_page_size (200): go round while rounds delete
    # something; then a last round that unlinks and insists (and raises what stays refused).
    for _ in range(50):
        if not await _delete_found(tenant_fhir, tag, order, last=False):
            break
    await _delete_found(tenant_fhir, tag, order, last=True)


async def _delete_found(
    tenant_fhir: TenantFhirClient,
    tag: dict[str, str] | None,
    order: Sequence[str],
    *,
    last: bool,
) -> bool:
    """Delete what one search per type finds; False when it deleted nothing."""
    waiting: dict[str, list[str]] = {}
    for resource_type in order:
        params = {"_count": "500", "_elements": "id"}
        if tag is not None:
            params["_tag"] = tag_search(tag)
        bundle = await tenant_fhir.search(resource_type, params, single_page=True)
        waiting[resource_type] = [r["id"] for r in bundle_resources(bundle, resource_type)]
    if not any(waiting.values()):
        return False
    found = sum(len(ids) for ids in waiting.values())
    # Referrers first (``order``); what a conflict still refuses — resources of one type that
    # refer to each other (a bed's Location partOf its room's), or a referrer of a type the
    # order puts later — goes again after the others, pass by pass, while passes make progress.
    for _ in range(6):
        left = 0
        progress = False
        for resource_type in order:
            refused = []
            for id_ in waiting[resource_type]:
                try:
                    await tenant_fhir.delete(resource_type, id_)
                    progress = True
                except FhirConflict:
                    refused.append(id_)
            waiting[resource_type] = refused
            left += len(refused)
        if not left or not progress:
            break
    left = sum(len(ids) for ids in waiting.values())
    if not last:
        return left < found
    for resource_type in order:
        for id_ in waiting[resource_type]:  # they refer to each other: unlink all, then delete
            await _unlink(tenant_fhir, resource_type, id_)
    for resource_type in order:
        for id_ in waiting[resource_type]:
            await delete_with_retries(tenant_fhir, resource_type, id_)
    return True


async def _unlink(tenant_fhir: TenantFhirClient, resource_type: str, id_: str) -> None:
    """Drop the references resources of one type hold to each other (merged Patients link
    both ways; Locations are partOf others), so each can then be deleted."""
    resource = await tenant_fhir.read(resource_type, id_)
    if any(name in resource for name in ("link", "partOf")):
        resource.pop("link", None)
        resource.pop("partOf", None)
        await tenant_fhir.update(resource)


async def delete_with_retries(tenant_fhir: TenantFhirClient, resource_type: str, id_: str) -> None:
    """Delete one resource; a conflict HAPI raises racing its own work is retried with backoff."""
    for pause in (0.5, 1.0, 2.0, 4.0):
        try:
            await tenant_fhir.delete(resource_type, id_)  # idempotent in HAPI
        except FhirConflict:
            await asyncio.sleep(pause)
        else:
            return
    await tenant_fhir.delete(resource_type, id_)


async def delete_tagged(
    tenant_fhir: TenantFhirClient, tag: dict[str, str], *, order: Sequence[str] = CLEANUP_ORDER
) -> None:
    """Delete every resource tagged ``tag``, then check none is left (a failure names the type)."""
    await delete_resources(tenant_fhir, tag=tag, order=order)
    for resource_type in order:
        left = await tenant_fhir.search(
            resource_type, {"_tag": tag_search(tag), "_summary": "count"}
        )
        assert left.get("total") == 0, f"{resource_type} left behind by {tag['code']}"


@asynccontextmanager
async def live_fhir_client(
    settings: Settings, tag: dict[str, str], *, http_backend: HttpBackend = "httpcore"
) -> AsyncIterator[FhirClient]:
    """A FhirClient on the real HAPI (a missing HAPI is a failure, not a skip); at the end what
    carries ``tag`` in the default partition is deleted (:func:`delete_tagged`)."""
    client = FhirClient(settings.fhir, http_backend=http_backend)
    await client.ping()
    try:
        yield client
    finally:
        try:
            await delete_tagged(client.for_tenant(settings.fhir.default_tenant), tag)
        finally:
            await client.aclose()  # also when the clean-up failed: no socket left to warn later
