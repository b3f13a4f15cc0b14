"""Dependencies of the notes routes: the tenant-bound service and the signer.

A portal patient (the patients module's compartment) gets a service that shows released notes
only. The patient gate (the Patient read through the patients module, the break-glass rule, the
PHI audit note) is ``clinical_record.open_patient``, called by each route.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ehr.modules import patients
from ehr.modules.notes.documents import Signer
from ehr.modules.notes.service import NoteService
from ehr.platform.auth.dependencies import CurrentPrincipal
from ehr.platform.auth.principal import Principal
from ehr.platform.tenancy import TenantFhirDep

__all__ = ["NoteServiceDep", "signer_of"]


async def get_note_service(fhir: TenantFhirDep, principal: CurrentPrincipal) -> NoteService:
    return NoteService(fhir, released_only=patients.compartment_of(principal) is not None)


NoteServiceDep = Annotated[NoteService, Depends(get_note_service)]


def signer_of(principal: Principal) -> Signer:
    """The principal as a note's author, signer or co-signer."""
    return Signer(user_id=str(principal.subject), display=principal.username)
