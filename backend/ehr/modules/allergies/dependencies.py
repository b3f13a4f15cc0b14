"""Dependencies of the allergies routes: the service bound to the caller's tenant, the caller's
compartment (through the patients module) and the caller as recorder."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ehr.modules import patients
from ehr.modules.allergies.service import AllergyService
from ehr.platform.auth.dependencies import CurrentPrincipal
from ehr.platform.tenancy import TenantFhirDep

__all__ = ["AllergyServiceDep", "get_allergy_service"]


async def get_allergy_service(
    fhir: TenantFhirDep, patients_service: patients.PatientServiceDep, principal: CurrentPrincipal
) -> AllergyService:
    return AllergyService(fhir, patients_service, principal=principal)


AllergyServiceDep = Annotated[AllergyService, Depends(get_allergy_service)]
