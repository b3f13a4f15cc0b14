"""The summary: eight sections, each one or two HAPI searches, all issued at once; a section HAPI
cannot answer says so (its problem code) while the others are served (ADR 0018).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ehr.core.errors import AppError
from ehr.fhir import TenantFhirClient, bundle_resources
from ehr.modules.chart.entries import sort_instant, to_entry
from ehr.modules.chart.schemas import ChartEntry, SectionName, SummarySection
from ehr.modules.clinical_record import is_entered_in_error

__all__ = ["SummaryQuery", "read_summary", "summary_plan"]

Visible = Callable[[Mapping[str, Any]], bool]

_RESULTS_SHOWN: Final = 20
# Recent results are first looked for in this window: for a patient with years of results HAPI
# then sorts a few months' results instead of all of them (5,000 results: 16 -> 9 ms). When the
# window holds fewer than the section shows, the unbounded search answers instead (exact).
RESULTS_WINDOW: Final = dt.timedelta(days=90)
# The FHIR R4 vital signs profile's codes (each vital sign has exactly one; the panels too).
# Searching by code, not by category, lets HAPI start from the code index instead of every
# Observation of the patient: the same answer for a vital-signs Observation, a third the work.
_VITAL_SIGN_CODES: Final = ",".join(
    f"http://loinc.org|{code}"
    for code in (
        "85353-1",  # vital signs panel
        "9279-1",  # respiratory rate
        "8867-4",  # heart rate
        "2708-6",  # oxygen saturation in arterial blood
        "59408-5",  # oxygen saturation by pulse oximetry
        "8310-5",  # body temperature
        "8302-2",  # body height
        "9843-4",  # head occipital-frontal circumference
        "29463-7",  # body weight
        "39156-5",  # body mass index
        "85354-9",  # blood pressure panel
        "8480-6",  # systolic blood pressure
        "8462-4",  # diastolic blood pressure
    )
)


@dataclass(frozen=True, slots=True)
class SummaryQuery:
    """One HAPI search of a summary section: ``limit`` entries shown, one more asked for (a
    single-page search has no ``next`` link, so the extra one says whether more exist).

    ``fallback``: a narrower first search (a date window) whose answer stands only when it fills
    the section (``limit`` + 1 found); otherwise ``fallback``'s answer is the section's.
    """

    resource_type: str
    params: tuple[tuple[str, str], ...]
    limit: int = 50
    fallback: SummaryQuery | None = None

    def search_params(self) -> list[tuple[str, str]]:
        return [*self.params, ("_count", str(self.limit + 1))]


def summary_plan(patient_id: str, now: dt.datetime) -> dict[SectionName, list[SummaryQuery]]:
    """The summary's sections and the HAPI searches each reads (in the answer's order).

    ``benchmarks/chart.py`` times exactly these searches one after another (a fallback when
    the summary would issue it). The results are looked for in :data:`RESULTS_WINDOW` first;
    a window for the vitals was measured and left out: the vitals search by code is as fast
    without it.
    """
    patient = ("patient", patient_id)
    today = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    window_start = (now - RESULTS_WINDOW).strftime("%Y-%m-%dT%H:%M:%SZ")
    q = SummaryQuery
    results = q(
        "Observation",
        (patient, ("category", "laboratory"), ("_sort", "-date")),
        limit=_RESULTS_SHOWN,
    )
    return {
        "problems": [
            q(
                "Condition",
                (
                    patient,
                    ("category", "problem-list-item"),
                    ("clinical-status", "active,recurrence,relapse"),
                ),
            )
        ],
        "allergies": [q("AllergyIntolerance", (patient, ("clinical-status", "active")))],
        "medications": [
            q("MedicationRequest", (patient, ("status", "active,on-hold"))),
            q("MedicationStatement", (patient, ("status", "active"))),
        ],
        "vitals": [
            q(
                "Observation",
                (patient, ("code", _VITAL_SIGN_CODES), ("_sort", "-date")),
                limit=100,
            )
        ],
        "results": [
            q(
                "Observation",
                (
                    patient,
                    ("category", "laboratory"),
                    ("date", f"ge{window_start}"),
                    ("_sort", "-date"),
                ),
                limit=_RESULTS_SHOWN,
                fallback=results,
            )
        ],
        "orders": [
            q(
                "ServiceRequest",
                (patient, ("status", "draft,active,on-hold"), ("_sort", "-authored")),
            )
        ],
        "appointments": [
            q(
                "Appointment",
                (
                    patient,
                    ("date", f"ge{today}"),
                    ("status", "proposed,pending,booked,arrived,checked-in"),
                    ("_sort", "date"),
                ),
            )
        ],
        "care_team": [q("CareTeam", (patient, ("status", "active")))],
    }


@dataclass(slots=True)
class _Read:
    resources: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = True


async def _read(fhir: TenantFhirClient, query: SummaryQuery) -> _Read:
    bundle = await fhir.search(query.resource_type, query.search_params(), single_page=True)
    resources = list(bundle_resources(bundle, query.resource_type))
    if query.fallback is not None and len(resources) <= query.limit:
        return await _read(fhir, query.fallback)  # the window did not fill the section
    return _Read(resources=resources[: query.limit], complete=len(resources) <= query.limit)


async def _section(
    fhir: TenantFhirClient,
    queries: Sequence[SummaryQuery],
    visible: Visible,
    shape: Callable[[list[ChartEntry]], list[ChartEntry]] | None = None,
) -> SummarySection:
    try:
        reads = await asyncio.gather(*(_read(fhir, query) for query in queries))
    except AppError as exc:
        return SummarySection(status="unavailable", error=exc.code, detail=exc.detail)
    entries: list[ChartEntry] = []
    withheld = 0
    for resource in (r for read in reads for r in read.resources):
        if is_entered_in_error(resource):
            continue
        if not visible(resource):
            withheld += 1
            continue
        entries.append(to_entry(resource))
    complete = all(read.complete for read in reads)
    if shape is not None:
        shaped = shape(entries)
        complete = complete and len(shaped) == len(entries)
        entries = shaped
    return SummarySection(status="ok", entries=entries, complete=complete, withheld=withheld)


async def read_summary(
    fhir: TenantFhirClient, patient_id: str, visible: Visible, *, now: dt.datetime
) -> dict[SectionName, SummarySection]:
    """Every section of the summary, read in parallel."""
    plan = summary_plan(patient_id, now)
    sections = {
        name: _section(fhir, queries, visible, _SECTION_SHAPES.get(name))
        for name, queries in plan.items()
    }
    results = await asyncio.gather(*sections.values())
    return dict(zip(sections, results, strict=True))


def _latest_per_code(entries: list[ChartEntry]) -> list[ChartEntry]:
    """The latest vital of each code (the query is newest first)."""
    seen: set[str] = set()
    latest: list[ChartEntry] = []
    for entry in entries:
        key = entry.code or entry.display or entry.id
        if key in seen:
            continue
        seen.add(key)
        latest.append(entry)
    return latest


def _abnormal_first(entries: list[ChartEntry]) -> list[ChartEntry]:
    """The newest results (at most 20), abnormal ones first (each group newest first)."""
    newest_first = sorted(entries, key=lambda e: sort_instant(e.date) or "", reverse=True)
    ordered = sorted(newest_first, key=lambda e: not e.abnormal)  # stable: keeps the dates
    return ordered[:_RESULTS_SHOWN]


# How a section's entries are shaped after the read (the others are shown as read).
_SECTION_SHAPES: Final[Mapping[SectionName, Callable[[list[ChartEntry]], list[ChartEntry]]]] = {
    "vitals": _latest_per_code,
    "results": _abnormal_first,
}
