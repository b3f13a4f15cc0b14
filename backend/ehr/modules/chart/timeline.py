"""The timeline: encounters, orders, results, notes and medication orders merged by clinical
date, newest first, keyset-paginated (ADR 0018).

Cursor: the last shown item's position ``[date, key]`` — ``date`` its clinical date as a UTC
instant, ``key`` its ``Type/id`` — sealed like the list cursors (``clinical_record.ListCursors``:
HMAC-SHA256 bound to the tenant, the patient and the timeline's filters), so it is opaque and a
cursor of another tenant, patient or filter set is refused (422 ``invalid_timeline_cursor``).
The next page is every item strictly older in the order (date desc, key desc) — a keyset, so
items recorded meanwhile never shift or repeat a page (a newer item shows on the first page; an
item back-dated into the already-read range is not revisited by an open cursor).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ehr.core.errors import AppError, RequestValidationFailed
from ehr.fhir import TenantFhirClient, bundle_resources, parse_fhir_date
from ehr.modules.chart.entries import clinical_date, display_of, sort_instant, status_of
from ehr.modules.chart.schemas import TimelineItem, TimelineKind, TimelinePage
from ehr.modules.clinical_record import InvalidListCursor, ListCursors, is_entered_in_error

__all__ = [
    "TIMELINE_KINDS",
    "InvalidTimelineCursor",
    "TimelineFilters",
    "open_cursor",
    "read_timeline",
    "seal_cursor",
]

_Visible = Callable[[Mapping[str, Any]], bool]

TIMELINE_KINDS: Final[tuple[TimelineKind, ...]] = (
    "encounter",
    "order",
    "result",
    "note",
    "medication",
)


class InvalidTimelineCursor(RequestValidationFailed):
    """A cursor not issued for this timeline (tenant, patient, filters), or not a cursor."""

    code = "invalid_timeline_cursor"
    title = "Invalid timeline cursor"


@dataclass(frozen=True, slots=True)
class TimelineFilters:
    """What a timeline page is filtered by — and what its cursor is sealed to."""

    kinds: tuple[TimelineKind, ...]
    since: str | None = None
    until: str | None = None
    released_notes_only: bool = False

    @property
    def scope(self) -> str:
        kinds = ",".join(sorted(set(self.kinds)))
        released = int(self.released_notes_only)
        return f"timeline|{kinds}|{self.since or ''}|{self.until or ''}|{released}"


def seal_cursor(
    cursors: ListCursors, filters: TimelineFilters, patient_id: str, date: str, key: str
) -> str:
    """The cursor of the item at (``date``, ``key``) in this patient's filtered timeline."""
    return cursors.seal(filters.scope, patient_id, (date, key))


def open_cursor(
    cursors: ListCursors, filters: TimelineFilters, patient_id: str, cursor: str
) -> tuple[str, str]:
    """The (date, key) a cursor names; :class:`InvalidTimelineCursor` (422) unless it was
    sealed for this tenant, patient and filters."""
    try:
        position = cursors.open(filters.scope, patient_id, cursor)
    except InvalidListCursor as refused:
        raise InvalidTimelineCursor(refused.detail) from None
    match position:
        case (str() as date, str() as key) if sort_instant(date) == date:
            return date, key
    raise InvalidTimelineCursor("The timeline cursor is not valid")  # pragma: no cover - sealed


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


async def read_timeline(
    fhir: TenantFhirClient,
    patient_id: str,
    visible: _Visible,
    *,
    filters: TimelineFilters,
    cursors: ListCursors,
    cursor: str | None,
    limit: int,
) -> TimelinePage:
    """One page of the timeline, newest first (see the module doc)."""
    kinds, since, until = filters.kinds, filters.since, filters.until
    released_notes_only = filters.released_notes_only
    after = open_cursor(cursors, filters, patient_id, cursor) if cursor is not None else None
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
        bundle = await fhir.search(source.resource_type, params, single_page=True)
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
            if is_entered_in_error(resource):
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
                        display=display_of(resource),
                        status=status_of(resource),
                    ),
                )
            )
    candidates.sort(key=lambda item: (item[0], item[1]), reverse=True)
    page = candidates[:limit]
    more = len(candidates) > limit
    next_cursor = (
        seal_cursor(cursors, filters, patient_id, page[-1][0], page[-1][1])
        if page and more
        else None
    )
    return TimelinePage(
        items=[item for _, _, item in page],
        next=next_cursor,
        unavailable=unavailable,
        withheld=withheld,
    )
