"""``/api/patients``: search, read and create patients (thin: authorize, call, audit, return).

Permissions: ``patient:read`` to search and read, ``patient:write`` to create. Every patient the
caller is shown is noted on the PHI audit trail. Restricted patients (confidentiality R/V) need
break-glass (``X-Break-Glass-Reason`` + ``break_glass:assert``): without it a read is 403
``break_glass_required`` and a search omits them; with it the access is allowed and the audit note
carries the break-glass flag and reason (purpose of use ETREAT).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from ehr.core.error_handlers import problem_responses
from ehr.core.intake import IntakeRoute
from ehr.modules.patients.dependencies import PatientServiceDep
from ehr.modules.patients.schemas import PatientCreate, PatientId, PatientPage, PatientSummary
from ehr.modules.patients.service import PATIENTS_PATH, PatientSearch, to_summary
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

router = APIRouter(prefix=PATIENTS_PATH, tags=["patients"], route_class=IntakeRoute)

# FHIR date search: optional prefix, then YYYY, YYYY-MM or YYYY-MM-DD.
_BIRTHDATE_PATTERN = r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)?\d{4}(-\d{2}(-\d{2})?)?$"
# Printable ASCII without control characters (token search: "system|value" or "value").
_IDENTIFIER_PATTERN = r"^[\x21-\x7e][\x20-\x7e]*$"

CanRead = Annotated[Principal, RequirePermission(Permission.PATIENT_READ)]
CanWrite = Annotated[Principal, RequirePermission(Permission.PATIENT_WRITE)]


def _note(
    audit: AuditTrail,
    action: str,
    resource: Mapping[str, Any],
    break_glass: BreakGlassRequest | None,
) -> None:
    """One audit note for one patient shown; flagged when break-glass opened it."""
    patient_id = str(resource.get("id", "")) or None
    audit.access(
        action,
        resource_type="Patient",
        resource_id=patient_id,
        patient_id=patient_id,
        break_glass=break_glass is not None,
        break_glass_reason=break_glass.reason if break_glass is not None else None,
    )


@router.get(
    "",
    response_model=PatientPage,
    responses=problem_responses(400, 401, 403, 422, 502, 503, 504),
)
async def search_patients(
    principal: CanRead,
    service: PatientServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    name: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Any part of a name.")
    ] = None,
    identifier: Annotated[
        str | None,
        Query(
            max_length=300,
            pattern=_IDENTIFIER_PATTERN,
            description="`system|value` or `value`.",
            examples=["urn:ehr:demo:mrn|DEMO-0001"],
        ),
    ] = None,
    birthdate: Annotated[
        str | None,
        Query(
            pattern=_BIRTHDATE_PATTERN,
            max_length=32,
            description="FHIR date search, e.g. `ge1980-01-01`.",
        ),
    ] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=100, description="Page size.")] = 20,
    page_token: Annotated[
        str | None,
        Query(
            max_length=4096,
            pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$",
            description="From a previous page's `next`; the other parameters are then ignored.",
        ),
    ] = None,
) -> PatientPage:
    """Search patients by name, identifier and birth date; pages follow `next`.

    Restricted patients are listed only with a break-glass reason (and `break_glass:assert`).
    """
    if page_token is not None:
        results = await service.next_page(page_token)
    else:
        criteria = PatientSearch(name=name, identifier=identifier, birthdate=birthdate, count=count)
        results = await service.search(criteria)
    may_break_glass = break_glass.asserted and principal.has(Permission.BREAK_GLASS)
    shown: list[dict[str, Any]] = []
    for resource in results.resources:
        restricted = is_restricted(resource)
        if restricted and not may_break_glass:
            continue
        shown.append(resource)
        _note(audit, "patient:search", resource, break_glass if restricted else None)
    if not shown:
        # The search itself touched patient data (criteria may identify someone): noted too.
        audit.access("patient:search", resource_type="Patient")
    return results.page(shown)


@router.get(
    "/{patient_id}",
    response_model=PatientSummary,
    responses=problem_responses(401, 403, 404, 410, 422, 502, 503, 504),
)
async def read_patient(
    patient_id: PatientId,
    principal: CanRead,
    service: PatientServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
) -> PatientSummary:
    """One patient's summary. A restricted patient needs `X-Break-Glass-Reason`."""
    resource = await service.get(patient_id)
    used = check_restricted_access(resource, principal, break_glass)
    _note(audit, "patient:read", resource, break_glass if used else None)
    return to_summary(resource)


@router.post(
    "",
    response_model=PatientSummary,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(400, 401, 403, 409, 412, 413, 422, 502, 503, 504),
)
async def create_patient(
    payload: PatientCreate,
    principal: CanWrite,
    service: PatientServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
) -> PatientSummary:
    """Create a patient. Idempotent on `identifier`: a retry returns the same patient.

    If the identifier belongs to an existing restricted patient, showing it needs break-glass.
    """
    stored = await service.create(payload)
    used = check_restricted_access(stored, principal, break_glass)
    _note(audit, "patient:create", stored, break_glass if used else None)
    summary = to_summary(stored)
    response.headers["Location"] = f"{PATIENTS_PATH}/{summary.id}"
    return summary
