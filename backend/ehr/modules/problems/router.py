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
from ehr.modules import patients
from ehr.modules.problems.dependencies import ProblemServiceDep
from ehr.modules.problems.schemas import (
    ClinicalStatus,
    Problem,
    ProblemCreate,
    ProblemId,
    ProblemList,
    ProblemUpdate,
)
from ehr.modules.problems.service import to_problem
from ehr.platform.audit.dependencies import AuditTrail, PhiAudit
from ehr.platform.auth.authorization import (
    BreakGlassDep,
    BreakGlassRequest,
    RequirePermission,
    check_restricted_access,
    is_restricted,
)
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal

__all__ = ["router"]

PREFIX = "/api/patients/{patient_id}/problems"

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


def _note(
    audit: AuditTrail,
    action: str,
    patient_id: str,
    problem_id: str | None,
    break_glass: BreakGlassRequest | None,
    details: dict[str, Any] | None = None,
) -> None:
    audit.access(
        action,
        resource_type="Condition",
        resource_id=problem_id,
        patient_id=patient_id,
        details=details,
        break_glass=break_glass is not None,
        break_glass_reason=break_glass.reason if break_glass is not None else None,
    )


def _shown(resource: Mapping[str, Any], patient_id: str, response: Response) -> Problem:
    """The problem's business view; its version goes out as the ETag."""
    tag = etag_of(resource)
    if tag is not None:
        response.headers["ETag"] = tag
    return to_problem(resource, patient_id)


async def _open_chart(
    service: ProblemServiceDep, patient_id: str, principal: Principal, break_glass: BreakGlassDep
) -> bool:
    """Read the patient (404 outside the compartment) and apply break-glass; True if used."""
    patient = await service.patient(patient_id)
    return check_restricted_access(patient, principal, break_glass)


@router.get(
    "",
    response_model=ProblemList,
    responses=problem_responses(401, 403, 404, 410, 422, 502, 503, 504),
)
async def list_problems(
    patient_id: patients.PatientId,
    principal: CanRead,
    service: ProblemServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    clinical_status: Annotated[
        list[ClinicalStatus] | None,
        Query(max_length=6, description="Only these clinical statuses (repeatable)."),
    ] = None,
    include_entered_in_error: Annotated[
        bool, Query(description="Also list entries marked entered-in-error.")
    ] = False,
) -> ProblemList:
    """The patient's problem list: active first; entered-in-error entries hidden by default."""
    used = await _open_chart(service, patient_id, principal, break_glass)
    resources, complete = await service.problems_of(
        patient_id,
        clinical_status=clinical_status or (),
        include_entered_in_error=include_entered_in_error,
    )
    may_break_glass = break_glass.asserted and principal.has(Permission.BREAK_GLASS)
    shown = [r for r in resources if may_break_glass or not is_restricted(r)]
    used = used or any(is_restricted(r) for r in shown)
    _note(
        audit,
        "problem:list",
        patient_id,
        None,
        break_glass if used else None,
        {"resource_ids": [str(r.get("id")) for r in shown]},
    )
    return ProblemList(items=[to_problem(r, patient_id) for r in shown], complete=complete)


@router.get(
    "/{problem_id}",
    response_model=Problem,
    responses=problem_responses(401, 403, 404, 410, 422, 502, 503, 504),
)
async def read_problem(
    patient_id: patients.PatientId,
    problem_id: ProblemId,
    principal: CanRead,
    service: ProblemServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
) -> Problem:
    """One problem, with its version as the ETag (send it back in If-Match to update)."""
    used = await _open_chart(service, patient_id, principal, break_glass)
    resource = await service.get(patient_id, problem_id)
    used = check_restricted_access(resource, principal, break_glass) or used
    _note(audit, "problem:read", patient_id, problem_id, break_glass if used else None)
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
    service: ProblemServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
) -> Problem:
    """Add a problem (ICD-10-CM or SNOMED CT) to the patient's problem list."""
    used = await _open_chart(service, patient_id, principal, break_glass)
    stored = await service.create(patient_id, payload)
    problem_id = str(stored.get("id", ""))
    _note(audit, "problem:create", patient_id, problem_id, break_glass if used else None)
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
    service: ProblemServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
    if_match: IfMatch = None,
) -> Problem:
    """Replace the problem's code, statuses, dates and note. `If-Match` is required (428
    without it; 412 when the problem changed since)."""
    used = await _open_chart(service, patient_id, principal, break_glass)
    stored = await service.update(patient_id, problem_id, payload, if_match=if_match)
    _note(audit, "problem:update", patient_id, problem_id, break_glass if used else None)
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
    service: ProblemServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
    if_match: IfMatch = None,
) -> Problem:
    """Mark the problem entered-in-error (it stays in the record; lists hide it by default)."""
    used = await _open_chart(service, patient_id, principal, break_glass)
    stored = await service.mark_entered_in_error(patient_id, problem_id, if_match=if_match)
    _note(audit, "problem:entered-in-error", patient_id, problem_id, break_glass if used else None)
    return _shown(stored, patient_id, response)
