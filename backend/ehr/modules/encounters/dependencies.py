"""Dependencies of the encounters routes: the tenant-bound service.

The patient gate (the Patient read through the patients module, the break-glass rule) is
``clinical_record.open_patient``, called by each route.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ehr.modules.encounters.service import EncounterService
from ehr.platform.tenancy import TenantFhirDep

__all__ = ["EncounterServiceDep", "get_encounter_service"]


async def get_encounter_service(fhir: TenantFhirDep) -> EncounterService:
    return EncounterService(fhir)


EncounterServiceDep = Annotated[EncounterService, Depends(get_encounter_service)]
