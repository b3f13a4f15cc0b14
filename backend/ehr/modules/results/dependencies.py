"""Dependencies of the results routes: the caller tenant's result policy (PostgreSQL) and the
service bound to the tenant's FHIR partition, the caller and that policy."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ehr.core.dependencies import SessionDep
from ehr.modules.results.policy import TenantResultPolicy, load_result_policy
from ehr.modules.results.service import ResultService
from ehr.platform.auth.dependencies import CurrentPrincipal
from ehr.platform.tenancy import TenantFhirDep

__all__ = ["ResultPolicyDep", "ResultServiceDep", "get_result_policy", "get_result_service"]


async def get_result_policy(session: SessionDep, principal: CurrentPrincipal) -> TenantResultPolicy:
    return await load_result_policy(session, principal.tenant_id)


ResultPolicyDep = Annotated[TenantResultPolicy, Depends(get_result_policy)]


async def get_result_service(
    fhir: TenantFhirDep, principal: CurrentPrincipal, policy: ResultPolicyDep
) -> ResultService:
    return ResultService(fhir, principal=principal, policy=policy)


ResultServiceDep = Annotated[ResultService, Depends(get_result_service)]
