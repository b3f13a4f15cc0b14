"""Dependencies of the patients routes.

``PatientsTenant`` is the tenant patient requests run in. Today it is the shared request tenant
(:data:`ehr.dependencies.TenantDep`, the settings' default tenant); the identity work binds that to
the authenticated principal and adds the patients permission check here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ehr.dependencies import FhirClientDep, SettingsDep, TenantDep
from ehr.modules.patients.service import PatientService

__all__ = ["PatientServiceDep", "PatientsTenant", "get_patient_service", "get_patients_tenant"]


def get_patients_tenant(tenant: TenantDep) -> str:
    """The tenant whose HAPI partition holds the patients of this request."""
    return tenant


PatientsTenant = Annotated[str, Depends(get_patients_tenant)]


def get_patient_service(
    fhir: FhirClientDep, tenant: PatientsTenant, settings: SettingsDep
) -> PatientService:
    return PatientService(
        fhir.for_tenant(tenant),
        page_token_key=settings.security.secret_key.get_secret_value().encode(),
    )


PatientServiceDep = Annotated[PatientService, Depends(get_patient_service)]
