"""The FHIR layer's dependency: ``FhirClientDep``, the process's pooled :class:`FhirClient`.

It is not tenant-bound: operator paths, health and the gateway's plumbing only. Business routes
get the tenant-bound client, :data:`ehr.platform.tenancy.TenantFhirDep`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ehr.fhir.client import FhirClient

__all__ = ["FhirClientDep", "fhir_client_of", "get_fhir_client"]


def fhir_client_of(request: Request) -> FhirClient:
    """The pooled client the app's lifespan opened (raises if the lifespan is not running)."""
    client = getattr(request.state, "fhir", None)
    if not isinstance(client, FhirClient):
        raise RuntimeError("FHIR client missing: is the app's lifespan running?")
    return client


async def get_fhir_client(request: Request) -> FhirClient:
    """:func:`fhir_client_of` as a dependency (a coroutine: no threadpool hop per request)."""
    return fhir_client_of(request)


FhirClientDep = Annotated[FhirClient, Depends(get_fhir_client)]
