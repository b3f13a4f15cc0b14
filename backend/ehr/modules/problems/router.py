"""The ``/api/patients/{patient_id}/problems`` routes (thin: authorize, call, audit, return).

Permissions: ``clinical:read`` to list and read (physician, nurse, pharmacist, patient — a
patient only its own), ``clinical:write`` to create, update and mark entered-in-error
(physician, nurse). Front desk and billing: 403. A restricted patient (confidentiality R/V)
needs break-glass, as on ``/api/patients``. Every access is one PHI audit note
(``problem:list``, ``problem:read``, ``problem:create``, ``problem:update``,
``problem:entered-in-error``) naming the patient and the Condition(s).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status

from ehr.core.error_handlers import problem_responses
from ehr.core.intake import IntakeRoute
from ehr.fhir import etag_of
from ehr.modules import clinical_record, patients
from ehr.modules.problems.dependencies import ProblemServiceDep
from ehr.modules.problems.schemas import (
    ClinicalStatus,
    Problem,
    ProblemCreate,
    ProblemId,
    ProblemList,
    ProblemUpdate,
)
from ehr.modules.problems.service import problem_order, to_problem
from ehr.platform.audit.dependencies import PhiAudit
from ehr.platform.auth.authorization import BreakGlassDep, RequirePermission
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal

__all__ = ["router"]

PREFIX = "/api/patients/{patient_id}/problems"

_TYPE = "Condition"

router = APIRouter(prefix=PREFIX, tags=["problems"], route_class=IntakeRoute)

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
    return f"problems|{','.join(sorted(set(statuses or [])))}|{int(with_errors)}"


def _shown(resource: Mapping[str, Any], patient_id: str, response: Response) -> Problem:
    """The problem's business view; its version goes out as the ETag."""
    tag = etag_of(resource)
    if tag is not None:
        response.headers["ETag"] = tag
    return to_problem(resource, patient_id)


@router.get(
    "",
    response_model=ProblemList,
    responses=problem_responses(401, 403, 404, 410, 422, 502, 503, 504),
)
async def list_problems(
    patient_id: patients.PatientId,
    principal: CanRead,
    patient_service: patients.PatientServiceDep,
    service: ProblemServiceDep,
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
) -> ProblemList:
    """The patient's problem list: active first; entered-in-error entries hidden by default.
    Pages of `limit` (default 50); `next` is the cursor of the next page."""
    gate = await clinical_record.open_patient(patient_id, principal, patient_service, break_glass)
    resources, complete = await service.problems_of(
        patient_id,
        clinical_status=clinical_status or (),
        include_entered_in_error=include_entered_in_error,
    )
    visible, gate = gate.shown(resources)
    scope = _list_scope(clinical_status, include_entered_in_error)
    shown, next_page = cursors.page(
        scope, patient_id, visible, problem_order, limit=limit, cursor=cursor
    )
    gate.note(
        audit,
        "problem:list",
        resource_type=_TYPE,
        details={"resource_ids": [str(r.get("id")) for r in shown]},
    )
    return ProblemList(
        items=[to_problem(r, patient_id) for r in shown], complete=complete, next=next_page
    )


@router.get(
    "/{problem_id}",
    response_model=Problem,
    responses=problem_responses(401, 403, 404, 410, 422, 502, 503, 504),
)
async def read_problem(
    patient_id: patients.PatientId,
    problem_id: ProblemId,
    principal: CanRead,
    patient_service: patients.PatientServiceDep,
    service: ProblemServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
) -> Problem:
    """One problem, with its version as the ETag (send it back in If-Match to update)."""
    gate = await clinical_record.open_patient(patient_id, principal, patient_service, break_glass)
    resource = await service.get(patient_id, problem_id)
    gate = gate.admit(resource)
    gate.note(audit, "problem:read", resource_type=_TYPE, resource_id=problem_id)
    return _shown(resource, patient_id, response)


@router.post(
    "",
    response_model=Problem,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(400, 401, 403, 404, 410, 413, 422, 502, 503, 504),
)
async def create_problem(
    patient_id: patients.PatientId,
    payload: ProblemCreate,
    principal: CanWrite,
    patient_service: patients.PatientServiceDep,
    service: ProblemServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
) -> Problem:
    """Add a problem (ICD-10-CM or SNOMED CT) to the patient's problem list."""
    gate = await clinical_record.open_patient(patient_id, principal, patient_service, break_glass)
    stored = await service.create(patient_id, payload)
    problem_id = str(stored.get("id", ""))
    gate.note(audit, "problem:create", resource_type=_TYPE, resource_id=problem_id)
    response.headers["Location"] = f"{PREFIX.format(patient_id=patient_id)}/{problem_id}"
    return _shown(stored, patient_id, response)


@router.put(
    "/{problem_id}",
    response_model=Problem,
    responses=problem_responses(400, 401, 403, 404, 409, 410, 412, 413, 422, 428, 502, 503, 504),
)
async def update_problem(
    patient_id: patients.PatientId,
    problem_id: ProblemId,
    payload: ProblemUpdate,
    principal: CanWrite,
    patient_service: patients.PatientServiceDep,
    service: ProblemServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
    if_match: IfMatch = None,
) -> Problem:
    """Replace the problem's code, statuses, dates and note. `If-Match` is required (428
    without it; 412 when the problem changed since)."""
    gate = await clinical_record.open_patient(patient_id, principal, patient_service, break_glass)
    stored = await service.update(patient_id, problem_id, payload, if_match=if_match)
    gate.note(audit, "problem:update", resource_type=_TYPE, resource_id=problem_id)
    return _shown(stored, patient_id, response)


@router.post(
    "/{problem_id}/entered-in-error",
    response_model=Problem,
    responses=problem_responses(400, 401, 403, 404, 410, 412, 422, 502, 503, 504),
)
async def mark_problem_entered_in_error(
    patient_id: patients.PatientId,
    problem_id: ProblemId,
    principal: CanWrite,
    patient_service: patients.PatientServiceDep,
    service: ProblemServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
    if_match: IfMatch = None,
) -> Problem:
    """Mark the problem entered-in-error (it stays in the record; lists hide it by default)."""
    gate = await clinical_record.open_patient(patient_id, principal, patient_service, break_glass)
    stored = await service.mark_entered_in_error(patient_id, problem_id, if_match=if_match)
    gate.note(audit, "problem:entered-in-error", resource_type=_TYPE, resource_id=problem_id)
    return _shown(stored, patient_id, response)
