"""The ``/api/patients/{patient_id}/encounters`` routes (thin: authorize, call, audit, return).

Permissions: ``clinical:read`` to list and read, ``clinical:write`` to start and change status.
Every encounter shown is noted on the PHI audit trail; restricted patients need break-glass, and
so do restricted (R/V) encounters: withheld from the list (counted in ``withheld``) and refused on
read (403 ``break_glass_required``) unless break-glass opened the chart.
Status changes follow the FHIR R4 workflow (409 ``encounter_transition_not_allowed``) and are
versioned: ``If-Match`` is required (428 ``if_match_required``) and must name the current version
(412 ``fhir_precondition_failed``), as on every chart write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status

from ehr.core.error_handlers import problem_responses
from ehr.core.intake import IntakeRoute
from ehr.modules import clinical_record, patients
from ehr.modules.clinical_record import PatientGate, open_patient
from ehr.modules.encounters.dependencies import EncounterServiceDep
from ehr.modules.encounters.schemas import (
    EncounterDischarge,
    EncounterId,
    EncounterList,
    EncounterStart,
    EncounterStatus,
    EncounterStatusChange,
    EncounterSummary,
)
from ehr.modules.encounters.service import encounter_order, to_summary
from ehr.platform.audit.dependencies import AuditTrail, PhiAudit
from ehr.platform.auth.authorization import BreakGlassDep, RequirePermission
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal

__all__ = ["router"]

router = APIRouter(
    prefix="/api/patients/{patient_id}/encounters", tags=["encounters"], route_class=IntakeRoute
)

CanRead = Annotated[Principal, RequirePermission(Permission.CLINICAL_READ)]
CanWrite = Annotated[Principal, RequirePermission(Permission.CLINICAL_WRITE)]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=40,
        pattern=r'^(W/)?"?[A-Za-z0-9\-.]{1,64}"?$',
        description='The version read (`3` or `W/"3"`): required (428); a newer stored '
        "version → 412.",
    ),
]
_READ_ERRORS = problem_responses(401, 403, 404, 410, 422, 502, 503, 504)
_WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 412, 413, 422, 428, 502, 503, 504)


def _note(audit: AuditTrail, action: str, gate: PatientGate, resource: Mapping[str, Any]) -> None:
    gate.note(
        audit, action, resource_type="Encounter", resource_id=str(resource.get("id", "")) or None
    )


def _shown(response: Response, summary: EncounterSummary) -> EncounterSummary:
    if summary.version:
        response.headers["ETag"] = f'W/"{summary.version}"'
    return summary


@router.get("", response_model=EncounterList, responses=_READ_ERRORS)
async def list_encounters(
    patient_id: patients.PatientId,
    principal: CanRead,
    patient_service: patients.PatientServiceDep,
    service: EncounterServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    cursors: clinical_record.ListCursorsDep,
    status_filter: Annotated[
        EncounterStatus | None, Query(alias="status", description="Only this status.")
    ] = None,
    limit: clinical_record.LimitParam = clinical_record.DEFAULT_PAGE_SIZE,
    cursor: clinical_record.CursorParam = None,
) -> EncounterList:
    """The patient's encounters, newest first, in pages of `limit` (default 50); `next` is the
    cursor of the next page."""
    gate = await open_patient(patient_id, principal, patient_service, break_glass)
    resources, complete = await service.list(patient_id, status=status_filter)
    visible, gate = gate.shown(resources)
    scope = f"encounters|{status_filter or ''}"
    shown, next_page = cursors.page(
        scope, patient_id, visible, encounter_order, limit=limit, cursor=cursor
    )
    for resource in shown:
        _note(audit, "encounter:list", gate, resource)
    if not shown:
        gate.note(audit, "encounter:list", resource_type="Encounter")
    return EncounterList(
        items=[to_summary(r, patient_id) for r in shown],
        complete=complete,
        next=next_page,
        withheld=len(resources) - len(visible),
    )


@router.get("/{encounter_id}", response_model=EncounterSummary, responses=_READ_ERRORS)
async def read_encounter(
    patient_id: patients.PatientId,
    encounter_id: EncounterId,
    principal: CanRead,
    patient_service: patients.PatientServiceDep,
    service: EncounterServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
) -> EncounterSummary:
    """One encounter (with its ETag)."""
    gate = await open_patient(patient_id, principal, patient_service, break_glass)
    resource = await service.get(patient_id, encounter_id)
    gate = gate.admit(resource)
    _note(audit, "encounter:read", gate, resource)
    return _shown(response, to_summary(resource, patient_id))


@router.post(
    "",
    response_model=EncounterSummary,
    status_code=status.HTTP_201_CREATED,
    responses=_WRITE_ERRORS,
)
async def start_encounter(
    patient_id: patients.PatientId,
    payload: EncounterStart,
    principal: CanWrite,
    patient_service: patients.PatientServiceDep,
    service: EncounterServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
) -> EncounterSummary:
    """Start an encounter (in-progress by default; `arrived` or `planned` if asked)."""
    gate = await open_patient(patient_id, principal, patient_service, break_glass)
    stored = await service.start(patient_id, payload)
    _note(audit, "encounter:start", gate, stored)
    summary = to_summary(stored, patient_id)
    response.headers["Location"] = f"/api/patients/{patient_id}/encounters/{summary.id}"
    return _shown(response, summary)


async def _transition(
    target: str,
    patient_id: str,
    encounter_id: str,
    principal: Principal,
    patient_service: patients.PatientService,
    service: EncounterServiceDep,
    audit: AuditTrail,
    break_glass: Any,
    response: Response,
    if_match: str | None,
    discharge: EncounterDischarge | None = None,
) -> EncounterSummary:
    gate = await open_patient(patient_id, principal, patient_service, break_glass)
    stored = await service.transition(
        patient_id, encounter_id, target, if_match=if_match, discharge=discharge
    )
    _note(audit, f"encounter:{target}", gate, stored)
    return _shown(response, to_summary(stored, patient_id))


@router.post("/{encounter_id}/discharge", response_model=EncounterSummary, responses=_WRITE_ERRORS)
async def discharge_encounter(
    patient_id: patients.PatientId,
    encounter_id: EncounterId,
    principal: CanWrite,
    patient_service: patients.PatientServiceDep,
    service: EncounterServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
    if_match: IfMatch = None,
    payload: EncounterDischarge | None = None,
) -> EncounterSummary:
    """Finish the encounter (period.end, optional discharge disposition)."""
    return await _transition(
        "finished", patient_id, encounter_id, principal, patient_service, service, audit,
        break_glass, response, if_match, payload or EncounterDischarge(),
    )  # fmt: skip


@router.post("/{encounter_id}/cancel", response_model=EncounterSummary, responses=_WRITE_ERRORS)
async def cancel_encounter(
    patient_id: patients.PatientId,
    encounter_id: EncounterId,
    principal: CanWrite,
    patient_service: patients.PatientServiceDep,
    service: EncounterServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
    if_match: IfMatch = None,
) -> EncounterSummary:
    """Cancel an encounter that has not finished."""
    return await _transition(
        "cancelled", patient_id, encounter_id, principal, patient_service, service, audit,
        break_glass, response, if_match,
    )  # fmt: skip


@router.post(
    "/{encounter_id}/entered-in-error", response_model=EncounterSummary, responses=_WRITE_ERRORS
)
async def encounter_entered_in_error(
    patient_id: patients.PatientId,
    encounter_id: EncounterId,
    principal: CanWrite,
    patient_service: patients.PatientServiceDep,
    service: EncounterServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
    if_match: IfMatch = None,
) -> EncounterSummary:
    """Mark an encounter as recorded in error (never a hard delete)."""
    return await _transition(
        "entered-in-error", patient_id, encounter_id, principal, patient_service, service,
        audit, break_glass, response, if_match,
    )  # fmt: skip


@router.post("/{encounter_id}/status", response_model=EncounterSummary, responses=_WRITE_ERRORS)
async def change_encounter_status(
    patient_id: patients.PatientId,
    encounter_id: EncounterId,
    payload: EncounterStatusChange,
    principal: CanWrite,
    patient_service: patients.PatientServiceDep,
    service: EncounterServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
    if_match: IfMatch = None,
) -> EncounterSummary:
    """Move the encounter along the workflow: arrived, triaged, in-progress or on leave."""
    return await _transition(
        payload.status, patient_id, encounter_id, principal, patient_service, service, audit,
        break_glass, response, if_match,
    )  # fmt: skip
