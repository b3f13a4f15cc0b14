"""Patients: search, read and create Patient resources through the tenant-bound FHIR client.

The public surface (other modules and the entrypoints import only this):

``router``              the ``/api/patients`` routes
``PatientService``      the patients use cases for one tenant (and compartment)
``PatientServiceDep``   the caller's :class:`PatientService` (tenant and compartment bound)
``PatientId``           the patient id path parameter (FHIR id grammar) of every module's routes
``PatientSummary``      what the business API shows of a Patient; ``to_summary`` makes one
``compartment_of``      the one Patient a portal principal may see (None for staff)
"""

from ehr.modules.patients.dependencies import PatientServiceDep, compartment_of
from ehr.modules.patients.router import router
from ehr.modules.patients.schemas import PatientId, PatientSummary
from ehr.modules.patients.service import PatientService, to_summary

__all__ = [
    "PatientId",
    "PatientService",
    "PatientServiceDep",
    "PatientSummary",
    "compartment_of",
    "router",
    "to_summary",
]
