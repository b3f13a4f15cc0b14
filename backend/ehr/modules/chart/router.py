"""``/api/patients/{patient_id}/summary`` and ``/timeline``: the chart at a glance and in order.

Permission ``clinical:read``. The patient is read first through the patients module (tenant and
portal compartment bound: another patient is 404) and the break-glass rule applied to it; then
the sections (or timeline kinds) are read in parallel. Restricted (R/V) entries of an open chart
are withheld unless break-glass was asserted (their number is in the answer). A section or kind
HAPI could not answer says so (its problem code); the request still succeeds. One audit note per
view, naming the patient. Portal users (role ``patient``) see only their own chart and, in the
timeline, only signed notes.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

from fastapi import APIRouter, Query

from ehr.core.error_handlers import problem_responses
from ehr.core.intake import IntakeRoute
from ehr.fhir.errors import FhirResourceNotFound
from ehr.modules import clinical_record, patients
from ehr.modules.chart.dependencies import ChartServiceDep
from ehr.modules.chart.schemas import ChartSummary, TimelineKind, TimelinePage
from ehr.modules.chart.service import TIMELINE_KINDS, TimelineFilters
from ehr.platform.audit.dependencies import PhiAudit
from ehr.platform.auth.authorization import BreakGlassDep, RequirePermission
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal

__all__ = ["router"]

router = APIRouter(prefix="/api/patients/{patient_id}", tags=["chart"], route_class=IntakeRoute)

CanRead = Annotated[Principal, RequirePermission(Permission.CLINICAL_READ)]
# FHIR date: YYYY, YYYY-MM, YYYY-MM-DD or a dateTime with offset.
_FHIR_DATE = r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?)?)?$"


@router.get(
    "/summary",
    response_model=ChartSummary,
    responses=problem_responses(401, 403, 404, 410, 422, 502, 503, 504),
)
async def patient_summary(
    patient_id: patients.PatientId,
    principal: CanRead,
    people: patients.PatientServiceDep,
    chart: ChartServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
) -> ChartSummary:
    """Demographics, active problems, allergies, active medications, latest vitals, recent
    results (abnormal first), open orders, upcoming appointments and care team; each section
    says whether it could be read."""
    compartment = patients.compartment_of(principal)
    if compartment is not None and compartment != patient_id:
        raise FhirResourceNotFound("The FHIR resource does not exist")  # before any read
    # The patient and the sections are read together; nothing is shown unless the patient
    # passes the break-glass rule (a refusal cancels the section reads).
    sections_read = asyncio.create_task(
        chart.summary(patient_id, clinical_record.entry_visibility(principal, break_glass))
    )
    try:
        gate = await clinical_record.open_patient(patient_id, principal, people, break_glass)
    except BaseException:
        sections_read.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sections_read
        raise
    sections = await sections_read
    gate.note(
        audit,
        "chart:summary",
        resource_type="Patient",
        resource_id=patient_id,
        details={
            "unavailable": sorted(n for n, s in sections.items() if s.status != "ok"),
            "withheld": sum(s.withheld for s in sections.values()),
        },
    )
    return ChartSummary(patient=patients.to_summary(gate.patient), sections=sections)


@router.get(
    "/timeline",
    response_model=TimelinePage,
    responses=problem_responses(401, 403, 404, 410, 422, 502, 503, 504),
)
async def patient_timeline(
    patient_id: patients.PatientId,
    principal: CanRead,
    people: patients.PatientServiceDep,
    chart: ChartServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    cursors: clinical_record.ListCursorsDep,
    kind: Annotated[
        list[TimelineKind] | None,
        Query(max_length=5, description="Kinds to include (repeat); all when absent."),
    ] = None,
    since: Annotated[
        str | None, Query(pattern=_FHIR_DATE, max_length=40, description="FHIR date, inclusive.")
    ] = None,
    until: Annotated[
        str | None, Query(pattern=_FHIR_DATE, max_length=40, description="FHIR date, inclusive.")
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            max_length=1024,
            pattern=r"^[A-Za-z0-9_.-]+$",
            description="From a page's `next`, with the same filters.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page.")] = 25,
) -> TimelinePage:
    """Encounters, orders, results, notes and medication changes merged by clinical date,
    newest first; pages follow `next` (a keyset: stable while new entries are recorded)."""
    gate = await clinical_record.open_patient(patient_id, principal, people, break_glass)
    kinds = list(dict.fromkeys(kind)) if kind else list(TIMELINE_KINDS)
    filters = TimelineFilters(
        kinds=tuple(kinds),
        since=since,
        until=until,
        released_notes_only=patients.compartment_of(principal) is not None,
    )
    page = await chart.timeline(
        patient_id,
        clinical_record.entry_visibility(principal, break_glass),
        filters=filters,
        cursors=cursors,
        cursor=cursor,
        limit=limit,
    )
    gate.note(
        audit,
        "chart:timeline",
        resource_type="Patient",
        resource_id=patient_id,
        details={"kinds": kinds, "items": len(page.items), "page": cursor is not None},
    )
    return page
