"""Dependencies of the patients routes.

The service is bound to the authenticated principal's tenant
(:data:`ehr.core.dependencies.TenantFhirDep`)
and, for the portal ``patient`` role, to the principal's own Patient (its compartment).
Permission checks are declared on each route (``RequirePermission``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ehr.core.dependencies import SettingsDep
from ehr.modules.patients.service import PatientService
from ehr.platform.auth.dependencies import CurrentPrincipal
from ehr.platform.auth.permissions import Role
from ehr.platform.auth.principal import Principal
from ehr.platform.tenancy import TenantFhirDep

__all__ = ["PatientServiceDep", "compartment_of", "get_patient_service"]


def compartment_of(principal: Principal) -> str | None:
    """The only Patient a portal principal may see; ``None`` for staff and service clients.

    A principal holding only the portal ``patient`` role is confined to its own compartment; a
    portal principal without a linked Patient sees nothing (an id no Patient has).
    """
    if principal.roles and all(role == Role.PATIENT for role in principal.roles):
        return principal.patient_id or ""
    return None


async def get_patient_service(
    fhir: TenantFhirDep, principal: CurrentPrincipal, settings: SettingsDep
) -> PatientService:
    return PatientService(
        fhir,
        page_token_key=settings.security.secret_key.get_secret_value().encode(),
        compartment=compartment_of(principal),
    )


PatientServiceDep = Annotated[PatientService, Depends(get_patient_service)]
