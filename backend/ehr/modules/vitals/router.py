"""The ``/api/patients/{patient_id}/vitals`` routes (thin: authorize, call, audit, return).

Permissions: ``clinical:read`` to list and read (physician, nurse, pharmacist, the patient in
its own compartment), ``clinical:write`` to record, correct and mark entered-in-error (physician,
nurse). The patient is read first through the patients module: a missing patient, or another
patient for a portal principal, is 404; a restricted (R/V) patient needs break-glass. Every
access is noted on the PHI audit trail (``vitals:record``, ``vitals:list``, ``vitals:read``,
``vitals:update``, ``vitals:entered-in-error``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final

from fastapi import APIRouter, Header, Path, Query, Response, status

from ehr.core.error_handlers import problem_responses
from ehr.core.intake import IntakeRoute, IsoDate
from ehr.modules import patients
from ehr.modules.clinical_record import PatientGate, open_patient
from ehr.modules.vitals.dependencies import VitalsServiceDep
from ehr.modules.vitals.schemas import (
    FHIR_ID_PATTERN,
    LOINC_PATTERN,
    VitalSignOut,
    VitalsPage,
    VitalsRecord,
    VitalsRecorded,
    VitalUpdate,
)
from ehr.modules.vitals.service import to_vital
from ehr.platform.audit.dependencies import AuditTrail, PhiAudit
from ehr.platform.auth.authorization import BreakGlassDep, RequirePermission
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal

__all__ = ["router"]

router = APIRouter(
    prefix="/api/patients/{patient_id}/vitals", tags=["vitals"], route_class=IntakeRoute
)

CanRead = Annotated[Principal, RequirePermission(Permission.CLINICAL_READ)]
CanWrite = Annotated[Principal, RequirePermission(Permission.CLINICAL_WRITE)]
VitalId = Annotated[
    str, Path(pattern=FHIR_ID_PATTERN, max_length=64, description="The vital sign's id.")
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=70,
        pattern=r'^(W/)?"?[A-Za-z0-9\-.]{1,64}"?$',
        description='The version being changed: `3` or `W/"3"` (from `version` or the ETag).',
    ),
]
_READ_ERRORS: Final = (401, 403, 404, 410, 422, 502, 503, 504)
_WRITE_ERRORS: Final = (400, 401, 403, 404, 409, 410, 412, 413, 422, 428, 502, 503, 504)


def _note(
    audit: AuditTrail,
    action: str,
    gate: PatientGate,
    resource_id: str | None = None,
    **details: Any,
) -> None:
    gate.note(
        audit, action, resource_type="Observation", resource_id=resource_id, details=details or None
    )


def _with_etag(response: Response, vital: VitalSignOut) -> VitalSignOut:
    if vital.version is not None:
        response.headers["ETag"] = f'W/"{vital.version}"'
    return vital


@router.post(
    "",
    response_model=VitalsRecorded,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(*_WRITE_ERRORS),
)
async def record_vitals(
    patient_id: patients.PatientId,
    payload: VitalsRecord,
    principal: CanWrite,
    patient_service: patients.PatientServiceDep,
    service: VitalsServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
) -> VitalsRecorded:
    """Record a set of vitals taken together; a BMI is derived from a weight and a height.

    Values are converted to the canonical UCUM unit; an impossible value is 422
    `value_out_of_range`, a unit that is not UCUM or of the wrong kind 422 `unit_not_allowed`.
    """
    gate = await open_patient(patient_id, principal, patient_service, break_glass)
    stored = await service.record(patient_id, payload)
    for resource in stored:
        _note(audit, "vitals:record", gate, str(resource.get("id", "")) or None)
    return VitalsRecorded(items=[to_vital(r) for r in stored])


@router.get("", response_model=VitalsPage, responses=problem_responses(400, *_READ_ERRORS))
async def list_vitals(
    patient_id: patients.PatientId,
    principal: CanRead,
    patient_service: patients.PatientServiceDep,
    service: VitalsServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    code: Annotated[
        str | None, Query(pattern=LOINC_PATTERN, max_length=10, description="A LOINC code.")
    ] = None,
    since: Annotated[IsoDate | None, Query(description="Taken on or after this date.")] = None,
    until: Annotated[IsoDate | None, Query(description="Taken on or before this date.")] = None,
    include_entered_in_error: Annotated[
        bool, Query(description="Also list those marked entered-in-error.")
    ] = False,
    count: Annotated[int, Query(alias="_count", ge=1, le=100, description="Page size.")] = 20,
    page_token: Annotated[
        str | None,
        Query(
            max_length=4096,
            pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$",
            description="From a previous page's `next`; the other parameters are then ignored.",
        ),
    ] = None,
) -> VitalsPage:
    """The patient's vital signs, latest first; filter by LOINC code and date range."""
    gate = await open_patient(patient_id, principal, patient_service, break_glass)
    if page_token is not None:
        results = await service.next_page(patient_id, page_token)
    else:
        results = await service.search(
            patient_id,
            code=code,
            since=since if isinstance(since, dt.date) else None,
            until=until if isinstance(until, dt.date) else None,
            count=count,
            include_entered_in_error=include_entered_in_error,
        )
    _note(audit, "vitals:list", gate, count=len(results.resources))
    return VitalsPage(items=[to_vital(r) for r in results.resources], next=results.next)


@router.get("/{vital_id}", response_model=VitalSignOut, responses=problem_responses(*_READ_ERRORS))
async def read_vital(
    patient_id: patients.PatientId,
    vital_id: VitalId,
    principal: CanRead,
    patient_service: patients.PatientServiceDep,
    service: VitalsServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
) -> VitalSignOut:
    """One vital sign (ETag: its version)."""
    gate = await open_patient(patient_id, principal, patient_service, break_glass)
    resource = await service.get(patient_id, vital_id)
    _note(audit, "vitals:read", gate, vital_id)
    return _with_etag(response, to_vital(resource))


@router.put("/{vital_id}", response_model=VitalSignOut, responses=problem_responses(*_WRITE_ERRORS))
async def update_vital(
    patient_id: patients.PatientId,
    vital_id: VitalId,
    payload: VitalUpdate,
    principal: CanWrite,
    patient_service: patients.PatientServiceDep,
    service: VitalsServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
    if_match: IfMatch = None,
) -> VitalSignOut:
    """Correct a measurement (status `amended`). `If-Match` is required (428 without it; a
    stale version is 412)."""
    gate = await open_patient(patient_id, principal, patient_service, break_glass)
    stored = await service.update(patient_id, vital_id, payload, if_match=if_match)
    _note(audit, "vitals:update", gate, vital_id)
    return _with_etag(response, to_vital(stored))


@router.post(
    "/{vital_id}/entered-in-error",
    response_model=VitalSignOut,
    responses=problem_responses(*_WRITE_ERRORS),
)
async def mark_entered_in_error(
    patient_id: patients.PatientId,
    vital_id: VitalId,
    principal: CanWrite,
    patient_service: patients.PatientServiceDep,
    service: VitalsServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
    if_match: IfMatch = None,
) -> VitalSignOut:
    """Mark a vital sign entered-in-error (never deleted); a BMI derived from it follows."""
    gate = await open_patient(patient_id, principal, patient_service, break_glass)
    stored = await service.mark_entered_in_error(patient_id, vital_id, if_match=if_match)
    for resource in stored:
        _note(
            audit,
            "vitals:entered-in-error",
            gate,
            str(resource.get("id", "")) or None,
        )
    marked = next((r for r in stored if r.get("id") == vital_id), stored[0])
    return _with_etag(response, to_vital(marked))
