"""A LOINC code's time series for a chart: each point's value normalised to one UCUM unit
through ucumvert, with the value and unit as reported and the flags.

The series' unit is the caller's (``unit``), else the unit of the code's critical limit, else
the newest numeric result's. A result that is not numeric, or whose unit is of another kind,
is left out and counted (``skipped``); so is one of another status or category (checked here,
not in the search). One search on HAPI, newest first, ``limit`` + 1 entries
(a chart shows a bounded number of points; ``complete`` says whether older ones exist), sent
single-page (HAPI keeps no search for paging). A portal user's series holds released results
only: final/amended/corrected, issued at least the tenant's release delay ago, and no critical
result still waiting for its acknowledgement.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Final

from ehr.fhir import TenantFhirClient, bundle_resources, codings, reference_of
from ehr.modules.results.codes import (
    ACKNOWLEDGE_CRITICAL,
    LABORATORY_CATEGORY,
    LOINC_SYSTEM,
    OBSERVATION_CATEGORY_SYSTEM,
    TASK_CODE_SYSTEM,
)
from ehr.modules.results.policy import TenantResultPolicy
from ehr.modules.results.schemas import TrendPoint, TrendSeries
from ehr.modules.results.service import RELEASED_STATUSES, is_acknowledgement
from ehr.modules.results.units import UnitNotAllowed, check_unit, convert, units_ready
from ehr.modules.results.views import observation_view, ref_id, when

__all__ = ["TREND_STATUSES", "trend", "trend_search_params"]

TREND_STATUSES: Final = (*sorted(RELEASED_STATUSES), "preliminary")


async def _held_back(fhir: TenantFhirClient, patient_id: str) -> set[str]:
    """The Observations of the patient's critical results still waiting for acknowledgement."""
    bundle = await fhir.search(
        "Task",
        [
            ("patient", f"Patient/{patient_id}"),
            ("code", f"{TASK_CODE_SYSTEM}|{ACKNOWLEDGE_CRITICAL}"),
            ("status", "requested,received,accepted,ready,in-progress,on-hold"),
            ("_count", "200"),
        ],
        single_page=True,
    )
    held: set[str] = set()
    for task in bundle_resources(bundle, "Task"):
        if not is_acknowledgement(task):
            continue
        for item in task.get("input") or []:
            value = item.get("valueReference") if isinstance(item, Mapping) else None
            observation_id = ref_id(value, "Observation")
            if observation_id is not None:
                held.add(f"Observation/{observation_id}")
    return held


def _is_laboratory(resource: Mapping[str, Any]) -> bool:
    return any(
        c.system == OBSERVATION_CATEGORY_SYSTEM and c.code == LABORATORY_CATEGORY
        for concept in resource.get("category") or []
        for c in codings(concept)
    )


def _portal_visible(
    resource: Mapping[str, Any], held: set[str], *, now: dt.datetime, delay: dt.timedelta
) -> bool:
    if resource.get("status") not in RELEASED_STATUSES or reference_of(resource) in held:
        return False
    issued = when(resource.get("issued"))
    return issued is not None and issued <= now - delay


def trend_search_params(
    patient_id: str, loinc: str, *, since: dt.date | None, until: dt.date | None, limit: int
) -> list[tuple[str, str]]:
    """The one HAPI search of a trend (the benchmark times exactly this)."""
    params: list[tuple[str, str]] = [
        ("subject", f"Patient/{patient_id}"),
        ("code", f"{LOINC_SYSTEM}|{loinc}"),
        ("_sort", "-date"),
        ("_count", str(limit + 1)),
    ]
    if since is not None:
        params.append(("date", f"ge{since.isoformat()}"))
    if until is not None:
        params.append(("date", f"le{until.isoformat()}"))
    return params


async def trend(
    fhir: TenantFhirClient,
    patient_id: str,
    loinc: str,
    *,
    policy: TenantResultPolicy,
    portal: bool,
    since: dt.date | None = None,
    until: dt.date | None = None,
    unit: str | None = None,
    limit: int = 200,
    visible: Callable[[Mapping[str, Any]], bool] = lambda _: True,
) -> tuple[TrendSeries, list[dict[str, Any]]]:
    """The series (oldest first) and the Observations it shows (for the audit)."""
    await units_ready()
    if unit is not None:
        check_unit(unit, field="unit")
    statuses = RELEASED_STATUSES if portal else frozenset(TREND_STATUSES)
    # Category and status are checked here, not sent: each token parameter is one more join of
    # HAPI's index tables, and on a patient with thousands of results they doubled the search's
    # time (measured: benchmarks/results_trend.py, ADR 0022).
    params = trend_search_params(patient_id, loinc, since=since, until=until, limit=limit)
    search = fhir.search("Observation", params, single_page=True)
    if portal:
        bundle, held = await asyncio.gather(search, _held_back(fhir, patient_id))
    else:
        bundle, held = await search, set()
    matched = bundle_resources(bundle, "Observation")
    complete = len(matched) <= limit
    found = [
        r
        for r in matched[:limit]
        if ref_id(r.get("subject"), "Patient") == patient_id
        and r.get("status") in statuses
        and _is_laboratory(r)
        and visible(r)
    ]
    now = dt.datetime.now(dt.UTC)
    if portal:
        found = [r for r in found if _portal_visible(r, held, now=now, delay=policy.release_delay)]
    views = [observation_view(r) for r in found]
    limit_row = policy.table.limit_of(loinc)
    target = unit or (limit_row.unit if limit_row is not None else None)
    if target is None:
        target = next((v.unit for v in views if v.value is not None and v.unit), None)
    points: list[TrendPoint] = []
    shown: list[dict[str, Any]] = []
    skipped = 0
    for resource, view in zip(found, views, strict=True):
        if view.value is None or view.unit is None or view.effective is None or target is None:
            skipped += 1
            continue
        try:
            value = convert(view.value, view.unit, target)
        except UnitNotAllowed:
            skipped += 1
            continue
        points.append(
            TrendPoint(
                observation_id=view.id,
                effective=view.effective,
                value=round(value, 6),
                original_value=view.value,
                original_unit=view.unit,
                interpretation=view.interpretation,
                critical=view.critical,
                status=view.status,
            )
        )
        shown.append(resource)
    points.reverse()
    display = next((v.display for v in views if v.display), None)
    if display is None and limit_row is not None:
        display = limit_row.display
    series = TrendSeries(
        code=loinc, display=display, unit=target, points=points, skipped=skipped, complete=complete
    )
    return series, shown
