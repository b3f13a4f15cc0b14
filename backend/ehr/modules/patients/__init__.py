"""Patients: search, read and create Patient resources through the tenant-bound FHIR client.

The public surface (other modules and the entrypoints import only this):

``router``              the ``/api/patients`` routes
``PatientService``      the patients use cases for one tenant (and compartment)
``PatientServiceDep``   the caller's :class:`PatientService` (tenant and compartment bound)
``PatientId``           the patient id path parameter (FHIR id grammar) of every module's routes
"""

from ehr.modules.patients.dependencies import PatientServiceDep
from ehr.modules.patients.router import router
from ehr.modules.patients.schemas import PatientId
from ehr.modules.patients.service import PatientService

__all__ = ["PatientId", "PatientService", "PatientServiceDep", "router"]
