"""Dependencies of the notes routes: the tenant-bound service, the patient gate, the signer.

A portal patient (the patients module's compartment) gets a service that shows released notes
only; the gate reads the Patient through the patients module (another patient → 404) and
applies the break-glass rule for restricted records.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends

from ehr.modules import patients
from ehr.modules.notes.documents import Signer
from ehr.modules.notes.service import NoteService
from ehr.platform.auth.authorization import BreakGlassRequest, check_restricted_access
from ehr.platform.auth.dependencies import CurrentPrincipal
from ehr.platform.auth.principal import Principal
from ehr.platform.tenancy import TenantFhirDep

__all__ = ["NoteServiceDep", "PatientGate", "open_patient", "signer_of"]


async def get_note_service(fhir: TenantFhirDep, principal: CurrentPrincipal) -> NoteService:
    return NoteService(fhir, released_only=patients.compartment_of(principal) is not None)


NoteServiceDep = Annotated[NoteService, Depends(get_note_service)]


def signer_of(principal: Principal) -> Signer:
    """The principal as a note's author, signer or co-signer."""
    return Signer(user_id=str(principal.subject), display=principal.username)


class PatientGate:
    """The patient whose notes are opened, and whether break-glass opened them."""

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
