"""The critical-results worklist: acknowledgement Tasks across the tenant, per unit.

One bounded search of our acknowledgement Tasks (open ones by default), newest first, with the
reports they focus on (``_include``); the unit filter is applied here (R4 has no Task
``location`` search parameter). Whether an item is escalated — open for longer than the
tenant's delay — is computed at read time; pushing notifications is the events/jobs issue's.
A restricted report is left out unless the caller broke the glass (the entry rule of the
chart); the items carry ids and codes, never values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Final

from ehr.fhir import TenantFhirClient
from ehr.modules.results.codes import ACKNOWLEDGE_CRITICAL, TASK_CODE_SYSTEM
from ehr.modules.results.policy import TenantResultPolicy
from ehr.modules.results.schemas import CriticalResult, CriticalResultList
from ehr.modules.results.service import is_acknowledgement
from ehr.modules.results.views import acknowledgement_of, loinc_of, ref_id

__all__ = ["OPEN_TASK_STATUSES", "critical_worklist"]

OPEN_TASK_STATUSES: Final = "requested,received,accepted,ready,in-progress,on-hold"
_PAGE: Final = 200
_MAX_PAGES: Final = 5


async def critical_worklist(
    fhir: TenantFhirClient,
    *,
    policy: TenantResultPolicy,
    visible: Callable[[Mapping[str, Any]], bool],
    unacknowledged: bool,
    location_id: str | None,
    limit: int,
) -> CriticalResultList:
    """The worklist (newest first), at most ``limit`` items."""
    params: list[tuple[str, str]] = [
        ("code", f"{TASK_CODE_SYSTEM}|{ACKNOWLEDGE_CRITICAL}"),
        ("_sort", "-authored-on"),
        ("_include", "Task:focus"),
    ]
    if unacknowledged:
        params.append(("status", OPEN_TASK_STATUSES))
    found = await fhir.search_all("Task", params, page_size=_PAGE, max_pages=_MAX_PAGES)
    now = dt.datetime.now(dt.UTC)
    items: list[CriticalResult] = []
    cut = False
    for task in found.matches:
        if not is_acknowledgement(task):
            continue
        location = ref_id(task.get("location"), "Location")
        if location_id is not None and location != location_id:
            continue
        report_id = ref_id(task.get("focus"), "DiagnosticReport")
        patient_id = ref_id(task.get("for"), "Patient")
        if report_id is None or patient_id is None:
            continue
        report = found.included.get(f"DiagnosticReport/{report_id}")
        if report is None or not visible(report) or not visible(task):
            continue
        if len(items) >= limit:
            cut = True
            break
        code, display = loinc_of(report)
        items.append(
            CriticalResult(
                report_id=report_id,
                patient_id=patient_id,
                location_id=location,
                code=code or None,
                display=display,
                acknowledgement=acknowledgement_of(task, now=now, escalation=policy.escalation),
            )
        )
    return CriticalResultList(
        items=items,
        escalation_minutes=policy.escalation_minutes,
        complete=found.complete and not cut,
    )
