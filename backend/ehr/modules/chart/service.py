"""The chart's views: the summary (sections read from HAPI in parallel, each failure reported in
its own section) and the timeline (every kind merged by clinical date, keyset-paginated).

Both read HAPI through the caller's tenant-bound client only. Restricted (R/V) entries are left
out unless break-glass opened the chart (the count of what was withheld is in the answer).

Timeline cursor: ``base64url(JSON [date, key])`` of the last item shown, where ``date`` is the
item's clinical date as a UTC instant and ``key`` its ``Type/id``. The next page is every item
strictly older in the order (date desc, key desc) — a keyset, so items recorded meanwhile never
shift or repeat a page (a newer item shows on the first page; an item back-dated into the
already-read range is not revisited by an open cursor).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ehr.core.errors import AppError, RequestValidationFailed
from ehr.fhir import TenantFhirClient, codings, concept_text, parse_fhir_date
from ehr.fhir.bundles import bundle_resources
from ehr.modules.chart.schemas import (
    ChartEntry,
    SectionName,
    SummarySection,
    TimelineItem,
    TimelineKind,
    TimelinePage,
)

__all__ = [
    "ABNORMAL_INTERPRETATIONS",
    "TIMELINE_KINDS",
    "ChartService",
    "InvalidTimelineCursor",
    "SummaryQuery",
    "decode_cursor",
    "encode_cursor",
    "summary_plan",
]

# HL7 v3 ObservationInterpretation codes that flag a result as outside its reference range.
ABNORMAL_INTERPRETATIONS: Final = frozenset(
    {"A", "AA", "H", "HH", "HU", "L", "LL", "LU", "<", ">", "W", "IE", "POS", "DET", "R"}
)
_ENTERED_IN_ERROR: Final = "entered-in-error"
_RESULTS_SHOWN: Final = 20
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
TIMELINE_KINDS: Final[tuple[TimelineKind, ...]] = (
    "encounter",
    "order",
    "result",
    "note",
    "medication",
)


class InvalidTimelineCursor(RequestValidationFailed):
    code = "invalid_timeline_cursor"


@dataclass(frozen=True, slots=True)
class SummaryQuery:
    """One HAPI search of a summary section: ``limit`` entries shown, one more asked for (a
    single-page search has no ``next`` link, so the extra one says whether more exist)."""

    resource_type: str
    params: tuple[tuple[str, str], ...]
    limit: int = 50

    def search_params(self) -> list[tuple[str, str]]:
        return [*self.params, ("_count", str(self.limit + 1))]


def summary_plan(patient_id: str, now: dt.datetime) -> dict[SectionName, list[SummaryQuery]]:
    """The summary's sections and the HAPI searches each reads (in the answer's order).

    ``benchmarks/chart.py`` times exactly these searches one after another. (A date bound on
    the vitals and results searches was measured and left out: HAPI's plan gets slower, not
    faster, with it.)
    """
    patient = ("patient", patient_id)
    today = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    q = SummaryQuery
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
                (patient, ("category", "laboratory"), ("_sort", "-date")),
                limit=_RESULTS_SHOWN,
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


# --- reading FHIR values -------------------------------------------------------------------------


def clinical_date(resource: Mapping[str, Any]) -> str | None:
    """The date a resource is placed at in the chart (FHIR date/dateTime as written)."""
    resource_type = resource.get("resourceType")
    candidates: Sequence[object]
    if resource_type == "Encounter":
        period = resource.get("period")
        candidates = [period.get("start") if isinstance(period, Mapping) else None]
    elif resource_type == "Condition" or resource_type == "AllergyIntolerance":
        candidates = [resource.get("onsetDateTime"), resource.get("recordedDate")]
    elif resource_type in {"Observation", "DiagnosticReport"}:
        period = resource.get("effectivePeriod")
        candidates = [
            resource.get("effectiveDateTime"),
            period.get("start") if isinstance(period, Mapping) else None,
            resource.get("issued"),
        ]
    elif resource_type in {"MedicationRequest", "ServiceRequest"}:
        candidates = [resource.get("authoredOn")]
    elif resource_type == "MedicationStatement":
        period = resource.get("effectivePeriod")
        candidates = [
            resource.get("effectiveDateTime"),
            period.get("start") if isinstance(period, Mapping) else None,
            resource.get("dateAsserted"),
        ]
    elif resource_type == "DocumentReference":
        candidates = [resource.get("date")]
    elif resource_type == "Appointment":
        candidates = [resource.get("start")]
    elif resource_type == "CareTeam":
        period = resource.get("period")
        candidates = [period.get("start") if isinstance(period, Mapping) else None]
    else:
        candidates = []
    return next((value for value in candidates if isinstance(value, str) and value), None)


def sort_instant(value: str | None) -> str | None:
    """``value`` as a sortable UTC instant (a partial date at its start); None if not a date."""
    parsed = parse_fhir_date(value)
    if parsed is None:
        return None
    return parsed.start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _concept(resource: Mapping[str, Any]) -> object:
    for name in ("code", "medicationCodeableConcept", "type", "serviceType", "category"):
        value = resource.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if value:
            return value
    return None


def _display(resource: Mapping[str, Any]) -> str | None:
    if resource.get("resourceType") == "CareTeam" and isinstance(resource.get("name"), str):
        return str(resource["name"])
    if resource.get("resourceType") == "Appointment" and isinstance(
        resource.get("description"), str
    ):
        return str(resource["description"])
    concept = _concept(resource)
    text = concept_text(concept)
    if text:
        return text
    reference = resource.get("medicationReference")
    if isinstance(reference, Mapping) and isinstance(reference.get("display"), str):
        return str(reference["display"])
    return None


def _status(resource: Mapping[str, Any]) -> str | None:
    for name in ("clinicalStatus", "docStatus"):
        value = resource.get(name)
        first = codings(value, limit=1) if isinstance(value, Mapping) else []
        if first:
            return first[0].code
        if isinstance(value, str):
            return value
    status = resource.get("status")
    return status if isinstance(status, str) else None


def _quantity(value: object) -> str | None:
    if not isinstance(value, Mapping) or value.get("value") is None:
        return None
    unit = value.get("unit") or value.get("code") or ""
    return f"{value['value']} {unit}".strip()


def _value(resource: Mapping[str, Any]) -> str | None:
    if resource.get("resourceType") != "Observation":
        return None
    quantity = _quantity(resource.get("valueQuantity"))
    if quantity is not None:
        return quantity
    if isinstance(resource.get("valueString"), str):
        return str(resource["valueString"])
    concept = concept_text(resource.get("valueCodeableConcept"))
    if concept:
        return concept
    parts = [
        _quantity(component.get("valueQuantity"))
        for component in resource.get("component") or []
        if isinstance(component, Mapping)
    ]
    values = [part.split(" ", 1) for part in parts if part]
    if values and len({tuple(v[1:]) for v in values}) == 1:
        unit = values[0][1] if len(values[0]) > 1 else ""
        return f"{'/'.join(v[0] for v in values)} {unit}".strip()
    return ", ".join(part for part in parts if part) or None


def _interpretation(resource: Mapping[str, Any]) -> str | None:
    concepts = resource.get("interpretation")
    for concept in concepts if isinstance(concepts, list) else []:
        first = codings(concept, limit=1)
        if first and first[0].code:
            return first[0].code
    return None


def to_entry(resource: Mapping[str, Any]) -> ChartEntry:
    """A summary entry for ``resource``."""
    first = codings(_concept(resource), limit=1)
    code = f"{first[0].system or ''}|{first[0].code}" if first and first[0].code else None
    interpretation = _interpretation(resource)
    return ChartEntry(
        resource_type=str(resource.get("resourceType", "")),
        id=str(resource.get("id", "")),
        display=_display(resource),
        code=code,
        status=_status(resource),
        date=clinical_date(resource),
        value=_value(resource),
        interpretation=interpretation,
        abnormal=interpretation in ABNORMAL_INTERPRETATIONS,
    )


def _entered_in_error(resource: Mapping[str, Any]) -> bool:
    if resource.get("status") == _ENTERED_IN_ERROR:
        return True
    verification = resource.get("verificationStatus")
    first = codings(verification, limit=1) if isinstance(verification, Mapping) else []
    return bool(first) and first[0].code == _ENTERED_IN_ERROR


# --- cursor ---------------------------------------------------------------------------------------


def encode_cursor(date: str, key: str) -> str:
    raw = json.dumps([date, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """The (date, key) of a cursor; :class:`InvalidTimelineCursor` (422) if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        date, key = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise InvalidTimelineCursor("The timeline cursor is not valid") from None
    if not (isinstance(date, str) and isinstance(key, str) and sort_instant(date) == date):
        raise InvalidTimelineCursor("The timeline cursor is not valid")
    return date, key


# --- the service ----------------------------------------------------------------------------------

_Visible = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class _TimelineSource:
    kind: TimelineKind
    resource_type: str
    params: tuple[tuple[str, str], ...]
    sort: str
    date_param: str


_TIMELINE_SOURCES: Final = (
    _TimelineSource("encounter", "Encounter", (), "-date", "date"),
    _TimelineSource("order", "ServiceRequest", (), "-authored", "authored"),
    _TimelineSource("result", "Observation", (("category", "laboratory"),), "-date", "date"),
    _TimelineSource("result", "DiagnosticReport", (), "-date", "date"),
    _TimelineSource("note", "DocumentReference", (), "-date", "date"),
    _TimelineSource("medication", "MedicationRequest", (), "-authoredon", "authoredon"),
)


def _end_instant(value: str) -> str | None:
    """The last instant a FHIR date covers (a day: its 23:59:59.999999 UTC), sortable."""
    parsed = parse_fhir_date(value)
    if parsed is None:
        return None
    if parsed.moment is not None:
        end = parsed.moment
    else:
        end = dt.datetime.combine(parsed.last, dt.time.max, dt.UTC)
    return end.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _query_instant(instant: str) -> str:
    """A FHIR search instant (seconds, UTC) at or after ``instant`` (a sort_instant)."""
    moment = dt.datetime.strptime(instant, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + dt.timedelta(seconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class ChartService:
    """The chart views of one tenant's patients (the caller has checked access to the patient)."""

    def __init__(self, fhir: TenantFhirClient) -> None:
        self._fhir = fhir

    async def _read(self, query: SummaryQuery) -> _Read:
        bundle = await self._fhir.search(
            query.resource_type, query.search_params(), single_page=True
        )
        resources = list(bundle_resources(bundle, query.resource_type))
        return _Read(resources=resources[: query.limit], complete=len(resources) <= query.limit)

    async def _section(
        self,
        queries: Sequence[SummaryQuery],
        visible: _Visible,
        shape: Callable[[list[ChartEntry]], list[ChartEntry]] | None = None,
    ) -> SummarySection:
        try:
            reads = await asyncio.gather(*(self._read(query) for query in queries))
        except AppError as exc:
            return SummarySection(status="unavailable", error=exc.code, detail=exc.detail)
        entries: list[ChartEntry] = []
        withheld = 0
        for resource in (r for read in reads for r in read.resources):
            if _entered_in_error(resource):
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

    async def summary(
        self, patient_id: str, visible: _Visible, *, now: dt.datetime | None = None
    ) -> dict[SectionName, SummarySection]:
        """Every section of the summary, read in parallel (see the module doc)."""
        plan = summary_plan(patient_id, now or dt.datetime.now(dt.UTC))
        sections = {
            name: self._section(queries, visible, _SECTION_SHAPES.get(name))
            for name, queries in plan.items()
        }
        results = await asyncio.gather(*sections.values())
        return dict(zip(sections, results, strict=True))

    async def timeline(
        self,
        patient_id: str,
        visible: _Visible,
        *,
        kinds: Sequence[TimelineKind],
        since: str | None,
        until: str | None,
        cursor: str | None,
        limit: int,
        released_notes_only: bool = False,
    ) -> TimelinePage:
        """One page of the timeline, newest first (see the module doc)."""
        after = decode_cursor(cursor) if cursor is not None else None
        until_instant = _end_instant(until) if until is not None else None
        upper = [u for u in (until_instant, after[0] if after else None) if u]
        ceiling = min(upper) if upper else None
        sources = [source for source in _TIMELINE_SOURCES if source.kind in kinds]

        async def read(source: _TimelineSource) -> list[dict[str, Any]]:
            params: list[tuple[str, str]] = [
                ("patient", patient_id),
                *source.params,
                ("_sort", source.sort),
                ("_count", str(min(100, limit * 2 + 1))),
            ]
            if ceiling is not None:
                params.append((source.date_param, f"le{_query_instant(ceiling)}"))
            if since is not None:
                params.append((source.date_param, f"ge{since}"))
            # One page per source: the timeline pages by its own keyset, never by HAPI's links.
            bundle = await self._fhir.search(source.resource_type, params, single_page=True)
            return list(bundle_resources(bundle, source.resource_type))

        reads = await asyncio.gather(*(read(s) for s in sources), return_exceptions=True)
        unavailable: dict[TimelineKind, str] = {}
        candidates: list[tuple[str, str, TimelineItem]] = []
        withheld = 0
        for source, result in zip(sources, reads, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, AppError):
                    raise result
                unavailable[source.kind] = result.code
                continue
            for resource in result:
                if _entered_in_error(resource):
                    continue
                if (
                    released_notes_only
                    and source.kind == "note"
                    and (resource.get("docStatus") not in {"final", "amended"})
                ):
                    continue
                instant = sort_instant(clinical_date(resource))
                if instant is None:
                    continue
                key = f"{source.resource_type}/{resource.get('id', '')}"
                if after is not None and (instant, key) >= after:
                    continue
                if until_instant is not None and instant > until_instant:
                    continue
                if not visible(resource):
                    withheld += 1
                    continue
                candidates.append(
                    (
                        instant,
                        key,
                        TimelineItem(
                            kind=source.kind,
                            resource_type=source.resource_type,
                            id=str(resource.get("id", "")),
                            date=instant,
                            display=_display(resource),
                            status=_status(resource),
                        ),
                    )
                )
        candidates.sort(key=lambda item: (item[0], item[1]), reverse=True)
        page = candidates[:limit]
        more = len(candidates) > limit
        next_cursor = encode_cursor(page[-1][0], page[-1][1]) if page and more else None
        return TimelinePage(
            items=[item for _, _, item in page],
            next=next_cursor,
            unavailable=unavailable,
            withheld=withheld,
        )


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
