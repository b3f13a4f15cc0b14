"""The chart's views: the summary (sections read from HAPI in parallel, each failure reported in
its own section: :mod:`ehr.modules.chart.summary`) and the timeline (every kind merged by
clinical date, keyset-paginated: :mod:`ehr.modules.chart.timeline`).

Both read HAPI through the caller's tenant-bound client only. Restricted (R/V) entries are left
out unless break-glass opened the chart (the count of what was withheld is in the answer);
entered-in-error entries are never shown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from ehr.fhir import TenantFhirClient
from ehr.modules.chart.entries import (
    ABNORMAL_INTERPRETATIONS,
    clinical_date,
    sort_instant,
    to_entry,
)
from ehr.modules.chart.schemas import SectionName, SummarySection, TimelinePage
from ehr.modules.chart.summary import SummaryQuery, read_summary, summary_plan
from ehr.modules.chart.timeline import (
    TIMELINE_KINDS,
    InvalidTimelineCursor,
    TimelineFilters,
    open_cursor,
    read_timeline,
    seal_cursor,
)
from ehr.modules.clinical_record import ListCursors

__all__ = [
    "ABNORMAL_INTERPRETATIONS",
    "TIMELINE_KINDS",
    "ChartService",
    "InvalidTimelineCursor",
    "SummaryQuery",
    "TimelineFilters",
    "clinical_date",
    "open_cursor",
    "seal_cursor",
    "sort_instant",
    "summary_plan",
    "to_entry",
]

_Visible = Callable[[Mapping[str, Any]], bool]


class ChartService:
    """The chart views of one tenant's patients (the caller has checked access to the patient)."""

    def __init__(self, fhir: TenantFhirClient) -> None:
        self._fhir = fhir

    async def summary(
        self, patient_id: str, visible: _Visible, *, now: dt.datetime | None = None
    ) -> dict[SectionName, SummarySection]:
        """Every section of the summary, read in parallel (see the module doc)."""
        return await read_summary(
            self._fhir, patient_id, visible, now=now or dt.datetime.now(dt.UTC)
        )

    async def timeline(
        self,
        patient_id: str,
        visible: _Visible,
        *,
        filters: TimelineFilters,
        cursors: ListCursors,
        cursor: str | None,
        limit: int,
    ) -> TimelinePage:
        """One page of the timeline, newest first (see the module doc)."""
        return await read_timeline(
            self._fhir,
            patient_id,
            visible,
            filters=filters,
            cursors=cursors,
            cursor=cursor,
            limit=limit,
        )
