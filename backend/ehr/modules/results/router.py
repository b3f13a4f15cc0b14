"""The ``/api/patients/{patient_id}/results`` and ``.../trends/{loinc}`` routes (thin:
authorize, call, audit, return).

Permissions: ``result:write`` to record (lab technicians: results come from the laboratory;
point-of-care entry by clinicians is not offered here), ``result:read`` to list, read and trend
(physicians, nurses, pharmacists, lab technicians; a patient only its own released results),
``result:acknowledge`` to acknowledge a critical result (physicians, nurses). Front desk and
billing: 403. A restricted patient needs break-glass, as on ``/api/patients``. Every access is
one PHI audit note naming the patient (``result:record``, ``result:list``, ``result:read``,
``result:acknowledge``, ``result:trend``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final

from fastapi import APIRouter, Header, Path, Query, Response, status

from ehr.core.dependencies import SessionDep
from ehr.core.error_handlers import problem_responses
from ehr.core.intake import IntakeRoute, IsoDate
from ehr.fhir import etag_of
from ehr.modules import clinical_record, patients
from ehr.modules.results.dependencies import ResultServiceDep
from ehr.modules.results.resources import instant
from ehr.modules.results.schemas import (
    LOINC_PATTERN,
    AcknowledgeIn,
    ReportId,
    ResultList,
    ResultRecord,
    ResultReport,
    StoredStatus,
    TrendSeries,
)
from ehr.modules.results.trends import trend
from ehr.platform import events
from ehr.platform.audit.dependencies import PhiAudit
from ehr.platform.auth.authorization import BreakGlassDep, RequirePermission
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal
from ehr.platform.tenancy import TenantFhirDep

__all__ = ["router"]

PREFIX: Final = "/api/patients/{patient_id}"
_TYPE: Final = "DiagnosticReport"

router = APIRouter(prefix=PREFIX, tags=["results"], route_class=IntakeRoute)

CanRead = Annotated[Principal, RequirePermission(Permission.RESULT_READ)]
CanWrite = Annotated[Principal, RequirePermission(Permission.RESULT_WRITE)]
CanAcknowledge = Annotated[Principal, RequirePermission(Permission.RESULT_ACKNOWLEDGE)]
IfMatch = Annotated[
    str | None,
    Header(max_length=80, description="The acknowledgement Task's version (optional)."),
]
_READ_ERRORS: Final = (401, 403, 404, 410, 422, 502, 503, 504)


def _with_etag(response: Response, resource: dict[str, object], view: ResultReport) -> ResultReport:
    tag = etag_of(resource)
    if tag is not None:
        response.headers["ETag"] = tag
    return view


def _ids(view: ResultReport) -> dict[str, object]:
    return {
        "observation_ids": [o.id for o in view.observations],
        "order_id": view.order_id,
        "task_id": view.acknowledgement.task_id if view.acknowledgement else None,
        "critical": view.critical,
    }


@router.post(
    "/results",
    response_model=ResultReport,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(400, 401, 403, 404, 409, 410, 413, 422, 502, 503, 504),
)
async def record_results(
    patient_id: patients.PatientId,
    payload: ResultRecord,
    principal: CanWrite,
    patient_service: patients.PatientServiceDep,
    service: ResultServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    session: SessionDep,
    response: Response,
) -> ResultReport:
    """Record a laboratory report and its results in one FHIR transaction; a final report
    completes its order; a critical result (beyond the tenant's critical-value table, or called
    critical by the laboratory) is flagged LL/HH/AA and opens an acknowledgement Task.

    Refusals: 422 `invalid_code` (LOINC check digit), `unit_not_allowed` (not UCUM, or not a
    unit of the code), `order_not_found` (missing, or another patient's order),
    `location_not_found`; 409 `order_not_active` (revoked, on hold, completed, draft),
    `order_changed` (a race)."""
    gate = await clinical_record.open_patient(patient_id, principal, patient_service, break_glass)
    view = await service.record(patient_id, payload)
    gate.note(audit, "result:record", resource_type=_TYPE, resource_id=view.id, details=_ids(view))
    _emit(session, principal, "result.recorded", view)
    if view.critical:
        _emit(session, principal, "result.critical", view)
    response.headers["Location"] = f"{PREFIX.format(patient_id=patient_id)}/results/{view.id}"
    if view.version is not None:
        response.headers["ETag"] = f'W/"{view.version}"'
    return view


def _emit(session: SessionDep, principal: Principal, kind: str, view: ResultReport) -> None:
    """The domain event of a result (ids and codes only), in the request's transaction: it is
    committed with the audit of the same request or not at all (ADR 0023)."""
    data: dict[str, object] = {"code": view.code, "critical": view.critical}
    if view.acknowledgement is not None:
        data["task"] = f"Task/{view.acknowledgement.task_id}"
    events.emit(
        session,
        events.new_event(
            kind,
            tenant=principal.tenant,
            subject=f"Patient/{view.patient_id}",
            resource=f"{_TYPE}/{view.id}",
            resource_version=view.version,
            data=data,
        ),
    )


def _scope(code: str | None, since: object, until: object, statuses: list[str]) -> str:
    return f"results|{code or ''}|{since or ''}|{until or ''}|{','.join(sorted(statuses))}"


@router.get("/results", response_model=ResultList, responses=problem_responses(*_READ_ERRORS))
async def list_results(
    patient_id: patients.PatientId,
    principal: CanRead,
    patient_service: patients.PatientServiceDep,
    service: ResultServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    cursors: clinical_record.ListCursorsDep,
    code: Annotated[
        str | None, Query(pattern=LOINC_PATTERN, max_length=10, description="Report LOINC code.")
    ] = None,
    since: Annotated[IsoDate | None, Query(description="Collected on or after.")] = None,
    until: Annotated[IsoDate | None, Query(description="Collected on or before.")] = None,
    report_status: Annotated[
        list[StoredStatus] | None,
        Query(alias="status", max_length=4, description="preliminary, final, amended, corrected."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Reports per page.")] = 20,
    cursor: clinical_record.CursorParam = None,
) -> ResultList:
    """The patient's laboratory reports with their results, newest first (portal users: the
    released ones only)."""
    gate = await clinical_record.open_patient(patient_id, principal, patient_service, break_glass)
    statuses: list[str] = sorted(set(report_status or []))
    scope = _scope(code, since, until, statuses)
    after = cursors.open(scope, patient_id, cursor) if cursor is not None else None
    after_instant = None
    if after is not None and len(after) >= 2 and isinstance(after[1], int) and after[0] == 0:
        micros = -int(after[1])
        after_instant = instant(dt.datetime.fromtimestamp(micros / 1_000_000, dt.UTC))
    page = await service.page(
        patient_id,
        code=code,
        since=since if isinstance(since, dt.date) else None,
        until=until if isinstance(until, dt.date) else None,
        status=statuses,
        limit=limit,
        after=after,
        after_instant=after_instant,
        visible=clinical_record.entry_visibility(principal, break_glass),
    )
    _, gate = gate.shown(page.resources)
    gate.note(
        audit,
        "result:list",
        resource_type=_TYPE,
        details={"resource_ids": [r.id for r in page.reports]},
    )
    next_cursor = cursors.seal(scope, patient_id, page.last) if page.last is not None else None
    return ResultList(items=page.reports, next=next_cursor)


@router.get(
    "/results/{report_id}", response_model=ResultReport, responses=problem_responses(*_READ_ERRORS)
)
async def read_result(
    patient_id: patients.PatientId,
    report_id: ReportId,
    principal: CanRead,
    patient_service: patients.PatientServiceDep,
    service: ResultServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
) -> ResultReport:
    """One report with its results and, when critical, its acknowledgement."""
    gate = await clinical_record.open_patient(patient_id, principal, patient_service, break_glass)
    resource, view = await service.get(patient_id, report_id)
    gate = gate.admit(resource)
    gate.note(audit, "result:read", resource_type=_TYPE, resource_id=report_id, details=_ids(view))
    return _with_etag(response, resource, view)


@router.post(
    "/results/{report_id}/acknowledge",
    response_model=ResultReport,
    responses=problem_responses(400, 401, 403, 404, 409, 410, 412, 413, 422, 502, 503, 504),
)
async def acknowledge_result(
    patient_id: patients.PatientId,
    report_id: ReportId,
    payload: AcknowledgeIn,
    principal: CanAcknowledge,
    patient_service: patients.PatientServiceDep,
    service: ResultServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    session: SessionDep,
    if_match: IfMatch = None,
) -> ResultReport:
    """Acknowledge the report's critical result (who, when, comment). A report without one is
    404 `no_critical_result`; a second acknowledgement 409 `already_acknowledged`."""
    gate = await clinical_record.open_patient(patient_id, principal, patient_service, break_glass)
    view = await service.acknowledge(
        patient_id, report_id, comment=payload.comment, if_match=if_match
    )
    gate.note(
        audit, "result:acknowledge", resource_type=_TYPE, resource_id=report_id, details=_ids(view)
    )
    _emit(session, principal, "result.acknowledged", view)
    return view


@router.get(
    "/trends/{loinc}", response_model=TrendSeries, responses=problem_responses(*_READ_ERRORS)
)
async def result_trend(
    patient_id: patients.PatientId,
    loinc: Annotated[str, Path(pattern=LOINC_PATTERN, max_length=10, description="LOINC code.")],
    principal: CanRead,
    patient_service: patients.PatientServiceDep,
    service: ResultServiceDep,
    fhir: TenantFhirDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    since: Annotated[IsoDate | None, Query(description="Collected on or after.")] = None,
    until: Annotated[IsoDate | None, Query(description="Collected on or before.")] = None,
    unit: Annotated[
        str | None,
        Query(
            pattern=r"^[\x21-\x7e]{1,40}$", max_length=40, description="UCUM unit of the series."
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Newest points at most.")] = 200,
) -> TrendSeries:
    """A time series of one LOINC code (oldest first), values in one UCUM unit."""
    gate = await clinical_record.open_patient(patient_id, principal, patient_service, break_glass)
    series, shown = await trend(
        fhir,
        patient_id,
        loinc,
        policy=service.policy,
        portal=patients.compartment_of(principal) is not None,
        since=since if isinstance(since, dt.date) else None,
        until=until if isinstance(until, dt.date) else None,
        unit=unit,
        limit=limit,
        visible=clinical_record.entry_visibility(principal, break_glass),
    )
    _, gate = gate.shown(shown)
    gate.note(
        audit,
        "result:trend",
        resource_type="Observation",
        details={"code": loinc, "count": len(series.points)},
    )
    return series
