"""Dependencies of the problems routes: the service bound to the caller's tenant and the caller as
recorder (the patient gate is ``clinical_record.open_patient``, called by each route)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ehr.modules.problems.service import ProblemService
from ehr.platform.auth.dependencies import CurrentPrincipal
from ehr.platform.tenancy import TenantFhirDep

__all__ = ["ProblemServiceDep", "get_problem_service"]


async def get_problem_service(fhir: TenantFhirDep, principal: CurrentPrincipal) -> ProblemService:
    return ProblemService(fhir, principal=principal)


ProblemServiceDep = Annotated[ProblemService, Depends(get_problem_service)]
