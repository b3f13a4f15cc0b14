"""Dependencies of the problems routes: the service bound to the caller's tenant, the caller's
compartment (through the patients module) and the caller as recorder."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ehr.modules import patients
from ehr.modules.problems.service import ProblemService
from ehr.platform.auth.dependencies import CurrentPrincipal
from ehr.platform.tenancy import TenantFhirDep

__all__ = ["ProblemServiceDep", "get_problem_service"]


async def get_problem_service(
    fhir: TenantFhirDep, patients_service: patients.PatientServiceDep, principal: CurrentPrincipal
) -> ProblemService:
    return ProblemService(fhir, patients_service, principal=principal)


ProblemServiceDep = Annotated[ProblemService, Depends(get_problem_service)]
