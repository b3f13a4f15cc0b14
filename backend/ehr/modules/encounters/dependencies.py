"""Dependencies of the encounters routes: the tenant-bound service, and the patient gate.

The gate reads the Patient through the patients module (its compartment rule: a portal user
asking for another patient gets 404) and applies the break-glass rule for restricted records.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends

from ehr.modules import patients
from ehr.modules.encounters.service import EncounterService
from ehr.platform.auth.authorization import BreakGlassRequest, check_restricted_access
from ehr.platform.auth.principal import Principal
from ehr.platform.tenancy import TenantFhirDep

__all__ = ["EncounterServiceDep", "PatientGate", "open_patient"]


async def get_encounter_service(fhir: TenantFhirDep) -> EncounterService:
    return EncounterService(fhir)


EncounterServiceDep = Annotated[EncounterService, Depends(get_encounter_service)]


class PatientGate:
    """The patient whose chart is opened, and whether break-glass opened it."""

    __slots__ = ("break_glass", "patient", "patient_id")

    def __init__(
        self, patient_id: str, patient: dict[str, Any], break_glass: BreakGlassRequest | None
    ) -> None:
        self.patient_id = patient_id
        self.patient = patient
        self.break_glass = break_glass


async def open_patient(
    patient_id: str,
    principal: Principal,
    service: patients.PatientService,
    break_glass: BreakGlassRequest,
) -> PatientGate:
    """The patient, if this principal may open its chart (404 outside the compartment)."""
    patient = await service.get(patient_id)
    used = check_restricted_access(patient, principal, break_glass)
    return PatientGate(patient_id, patient, break_glass if used else None)
