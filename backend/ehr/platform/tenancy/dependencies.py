"""The tenant binding of a request.

``TenantDep``     the authenticated principal's tenant slug (= HAPI partition); never chosen by
                  the caller or by business code (a request without valid credentials is 401)
``TenantFhirDep`` the FHIR client bound to that tenant: the only FHIR client business code gets
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ehr.fhir import TenantFhirClient
from ehr.fhir.dependencies import FhirClientDep
from ehr.platform.auth.dependencies import CurrentPrincipal

__all__ = ["TenantDep", "TenantFhirDep", "get_tenant", "get_tenant_fhir"]


async def get_tenant(principal: CurrentPrincipal) -> str:
    """The tenant (HAPI partition) of the request: the authenticated principal's, always.

    It comes from the verified credential (access token or API key) whose tenant the
    authentication dependency has checked to be active; there is no header, parameter or setting
    by which a caller or business code could pick another one.
    """
    return principal.tenant


TenantDep = Annotated[str, Depends(get_tenant)]


async def get_tenant_fhir(fhir: FhirClientDep, tenant: TenantDep) -> TenantFhirClient:
    return fhir.for_tenant(tenant)


TenantFhirDep = Annotated[TenantFhirClient, Depends(get_tenant_fhir)]
