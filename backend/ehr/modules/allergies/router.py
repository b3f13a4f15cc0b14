"""The ``/api/patients/{patient_id}/allergies`` routes (thin: authorize, call, audit, return).

Permissions: ``clinical:read`` to list and read (physician, nurse, pharmacist, patient — a
patient only its own), ``clinical:write`` to create, update and mark entered-in-error
(physician, nurse). Front desk and billing: 403. A restricted patient (confidentiality R/V)
needs break-glass, as on ``/api/patients``. Every access is one PHI audit note
(``allergy:list``, ``allergy:read``, ``allergy:create``, ``allergy:update``,
``allergy:entered-in-error``) naming the patient and the AllergyIntolerance(s).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status

from ehr.core.error_handlers import problem_responses
from ehr.core.intake import IntakeRoute
from ehr.fhir import etag_of
from ehr.modules import clinical_record, patients
from ehr.modules.allergies.dependencies import AllergyServiceDep
from ehr.modules.allergies.schemas import (
    Allergy,
    AllergyCreate,
    AllergyId,
    AllergyList,
    AllergyUpdate,
    ClinicalStatus,
)
from ehr.modules.allergies.service import allergy_order, to_allergy
from ehr.platform.audit.dependencies import PhiAudit
from ehr.platform.auth.authorization import BreakGlassDep, RequirePermission
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal

__all__ = ["router"]

PREFIX = "/api/patients/{patient_id}/allergies"

_TYPE = "AllergyIntolerance"

router = APIRouter(prefix=PREFIX, tags=["allergies"], route_class=IntakeRoute)

CanRead = Annotated[Principal, RequirePermission(Permission.CLINICAL_READ)]
CanWrite = Annotated[Principal, RequirePermission(Permission.CLINICAL_WRITE)]
IfMatch = Annotated[
    str | None,
    Header(
        max_length=80,
        description='The version you read (its ETag, `W/"3"`, or the bare version id).',
    ),
]


def _list_scope(statuses: list[ClinicalStatus] | None, with_errors: bool) -> str:
    """The list and its filters, which a cursor is sealed to."""
    return f"allergies|{','.join(sorted(set(statuses or [])))}|{int(with_errors)}"


def _shown(resource: Mapping[str, Any], patient_id: str, response: Response) -> Allergy:
    """The allergy's business view; its version goes out as the ETag."""
    tag = etag_of(resource)
    if tag is not None:
        response.headers["ETag"] = tag
    return to_allergy(resource, patient_id)


@router.get(
    "",
    response_model=AllergyList,
    responses=problem_responses(401, 403, 404, 410, 422, 502, 503, 504),
)
async def list_allergies(
    patient_id: patients.PatientId,
    principal: CanRead,
    patient_service: patients.PatientServiceDep,
    service: AllergyServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    cursors: clinical_record.ListCursorsDep,
    clinical_status: Annotated[
        list[ClinicalStatus] | None,
        Query(max_length=6, description="Only these clinical statuses (repeatable)."),
    ] = None,
    include_entered_in_error: Annotated[
        bool, Query(description="Also list entries marked entered-in-error.")
    ] = False,
    limit: clinical_record.LimitParam = clinical_record.DEFAULT_PAGE_SIZE,
    cursor: clinical_record.CursorParam = None,
) -> AllergyList:
    """The patient's allergies: active first (high criticality first); entered-in-error
    entries hidden by default. Pages of `limit` (default 50); `next` is the cursor of the next
    page."""
    gate = await clinical_record.open_patient(patient_id, principal, patient_service, break_glass)
    resources, complete = await service.allergies_of(
        patient_id,
        clinical_status=clinical_status or (),
        include_entered_in_error=include_entered_in_error,
    )
    visible, gate = gate.shown(resources)
    scope = _list_scope(clinical_status, include_entered_in_error)
    shown, next_page = cursors.page(
        scope, patient_id, visible, allergy_order, limit=limit, cursor=cursor
    )
    gate.note(
        audit,
        "allergy:list",
        resource_type=_TYPE,
        details={"resource_ids": [str(r.get("id")) for r in shown]},
    )
    return AllergyList(
        items=[to_allergy(r, patient_id) for r in shown], complete=complete, next=next_page
    )


@router.get(
    "/{allergy_id}",
    response_model=Allergy,
    responses=problem_responses(401, 403, 404, 410, 422, 502, 503, 504),
)
async def read_allergy(
    patient_id: patients.PatientId,
    allergy_id: AllergyId,
    principal: CanRead,
    patient_service: patients.PatientServiceDep,
    service: AllergyServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
) -> Allergy:
    """One allergy, with its version as the ETag (send it back in If-Match to update)."""
    gate = await clinical_record.open_patient(patient_id, principal, patient_service, break_glass)
    resource = await service.get(patient_id, allergy_id)
    gate = gate.admit(resource)
    gate.note(audit, "allergy:read", resource_type=_TYPE, resource_id=allergy_id)
    return _shown(resource, patient_id, response)


@router.post(
    "",
    response_model=Allergy,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(400, 401, 403, 404, 410, 413, 422, 502, 503, 504),
)
async def create_allergy(
    patient_id: patients.PatientId,
    payload: AllergyCreate,
    principal: CanWrite,
    patient_service: patients.PatientServiceDep,
    service: AllergyServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
) -> Allergy:
    """Record an allergy or intolerance (substance by RxNorm / SNOMED CT, or free text: then
    medication safety cannot check it, and the answer says so)."""
    gate = await clinical_record.open_patient(patient_id, principal, patient_service, break_glass)
    stored = await service.create(patient_id, payload)
    allergy_id = str(stored.get("id", ""))
    gate.note(audit, "allergy:create", resource_type=_TYPE, resource_id=allergy_id)
    response.headers["Location"] = f"{PREFIX.format(patient_id=patient_id)}/{allergy_id}"
    return _shown(stored, patient_id, response)


@router.put(
    "/{allergy_id}",
    response_model=Allergy,
    responses=problem_responses(400, 401, 403, 404, 409, 410, 412, 413, 422, 428, 502, 503, 504),
)
async def update_allergy(
    patient_id: patients.PatientId,
    allergy_id: AllergyId,
    payload: AllergyUpdate,
    principal: CanWrite,
    patient_service: patients.PatientServiceDep,
    service: AllergyServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
    if_match: IfMatch = None,
) -> Allergy:
    """Replace the allergy's substance, statuses, category, criticality, reactions and note.
    `If-Match` is required (428 without it; 412 when the allergy changed since)."""
    gate = await clinical_record.open_patient(patient_id, principal, patient_service, break_glass)
    stored = await service.update(patient_id, allergy_id, payload, if_match=if_match)
    gate.note(audit, "allergy:update", resource_type=_TYPE, resource_id=allergy_id)
    return _shown(stored, patient_id, response)


@router.post(
    "/{allergy_id}/entered-in-error",
    response_model=Allergy,
    responses=problem_responses(400, 401, 403, 404, 410, 412, 422, 502, 503, 504),
)
async def mark_allergy_entered_in_error(
    patient_id: patients.PatientId,
    allergy_id: AllergyId,
    principal: CanWrite,
    patient_service: patients.PatientServiceDep,
    service: AllergyServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
    if_match: IfMatch = None,
) -> Allergy:
    """Mark the allergy entered-in-error (it stays in the record; lists hide it by default)."""
    gate = await clinical_record.open_patient(patient_id, principal, patient_service, break_glass)
    stored = await service.mark_entered_in_error(patient_id, allergy_id, if_match=if_match)
    gate.note(audit, "allergy:entered-in-error", resource_type=_TYPE, resource_id=allergy_id)
    return _shown(stored, patient_id, response)
