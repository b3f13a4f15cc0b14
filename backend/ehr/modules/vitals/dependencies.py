"""Dependencies of the vitals routes: the tenant-bound :class:`VitalsService`.

Permission checks are declared on each route (``RequirePermission``); the patient (and the
caller's compartment) is checked through the patients module before the service is used.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ehr.core.dependencies import SettingsDep
from ehr.modules.vitals.service import VitalsService
from ehr.platform.tenancy import TenantFhirDep

__all__ = ["VitalsServiceDep", "get_vitals_service"]


async def get_vitals_service(fhir: TenantFhirDep, settings: SettingsDep) -> VitalsService:
    return VitalsService(
        fhir, page_token_key=settings.security.secret_key.get_secret_value().encode()
    )


VitalsServiceDep = Annotated[VitalsService, Depends(get_vitals_service)]
