"""Dependencies of the allergies routes: the service bound to the caller's tenant and the caller as
recorder (the patient gate is ``clinical_record.open_patient``, called by each route)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ehr.modules.allergies.service import AllergyService
from ehr.platform.auth.dependencies import CurrentPrincipal
from ehr.platform.tenancy import TenantFhirDep

__all__ = ["AllergyServiceDep", "get_allergy_service"]


async def get_allergy_service(fhir: TenantFhirDep, principal: CurrentPrincipal) -> AllergyService:
    return AllergyService(fhir, principal=principal)


AllergyServiceDep = Annotated[AllergyService, Depends(get_allergy_service)]
