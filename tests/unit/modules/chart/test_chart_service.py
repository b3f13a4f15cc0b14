"""The chart service without HAPI: a section HAPI cannot answer is reported, the others are
served; the timeline's cursor, dates and ordering; entries' values and interpretations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest

from ehr.fhir.errors import FhirTimeout, FhirUnavailable
from ehr.modules.chart.schemas import TimelineKind
from ehr.modules.chart.service import (
    ChartService,
    InvalidTimelineCursor,
    TimelineFilters,
    open_cursor,
    seal_cursor,
    sort_instant,
    summary_plan,
    to_entry,
)
from ehr.modules.clinical_record import ListCursors

CURSORS = ListCursors(b"unit-secret", "t1")


class FakeFhir:
    """Answers searches from a table by resource type; a type mapped to an error raises it."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.searches: list[tuple[str, list[tuple[str, str]]]] = []
        self.single_page: list[bool] = []

    async def search(
        self, resource_type: str, params: Sequence[tuple[str, str]], *, single_page: bool = False
    ) -> Any:
        self.searches.append((resource_type, list(params)))
        self.single_page.append(single_page)
        answer = self.answers.get(resource_type, [])
        if isinstance(answer, Exception):
            raise answer
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": resource} for resource in answer],
        }


def _visible(_resource: Any) -> bool:
    return True


async def test_a_section_hapi_cannot_answer_is_reported_and_the_others_served() -> None:
    fhir = FakeFhir(
        {
            "Condition": [{"resourceType": "Condition", "id": "c1", "code": {"text": "Asthma"}}],
            "MedicationStatement": FhirUnavailable("The FHIR server cannot be reached"),
            "Appointment": FhirTimeout("The FHIR server did not answer in time"),
        }
    )
    sections = await ChartService(fhir).summary("p1", _visible)  # type: ignore[arg-type]
    assert sections["problems"].status == "ok"
    assert [entry.display for entry in sections["problems"].entries] == ["Asthma"]
    # medications = MedicationRequest + MedicationStatement: one of them failed → unavailable
    assert sections["medications"].status == "unavailable"
    assert sections["medications"].error == "fhir_unavailable"
    assert sections["appointments"].error == "fhir_timeout"
    assert {name for name, s in sections.items() if s.status == "ok"} == {
        "problems",
        "allergies",
        "vitals",
        "results",
        "orders",
        "care_team",
    }
    # Every query is bound to the patient.
    assert all(("patient", "p1") in params for _, params in fhir.searches)


async def test_restricted_and_entered_in_error_entries_are_left_out() -> None:
    fhir = FakeFhir(
        {
            "Condition": [
                {"resourceType": "Condition", "id": "ok"},
                {
                    "resourceType": "Condition",
                    "id": "err",
                    "verificationStatus": {"coding": [{"code": "entered-in-error"}]},
                },
                {"resourceType": "Condition", "id": "secret", "restricted": True},
            ]
        }
    )
    sections = await ChartService(fhir).summary(  # type: ignore[arg-type]
        "p1", lambda resource: not resource.get("restricted")
    )
    assert [e.id for e in sections["problems"].entries] == ["ok"]
    assert sections["problems"].withheld == 1


async def test_sections_read_one_page_and_know_when_more_exist() -> None:
    conditions = [{"resourceType": "Condition", "id": f"c{i}"} for i in range(51)]
    fhir = FakeFhir({"Condition": conditions, "AllergyIntolerance": conditions[:3]})
    sections = await ChartService(fhir).summary("p1", _visible)  # type: ignore[arg-type]
    # 51 answered for 50 shown: the section says more exist; 3 of 50: complete.
    assert len(sections["problems"].entries) == 50
    assert sections["problems"].complete is False
    assert sections["allergies"].complete is True
    assert all(fhir.single_page), "a summary section never pages, so HAPI stores no search"
    assert all(
        ("_count", "51") in p or ("_count", "21") in p or ("_count", "101") in p
        for _, p in fhir.searches
    )


def test_summary_plan_reads_vitals_by_the_profile_codes_and_every_query_is_the_patients() -> None:
    now = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)
    plan = summary_plan("p1", now)
    assert list(plan) == [
        "problems",
        "allergies",
        "medications",
        "vitals",
        "results",
        "orders",
        "appointments",
        "care_team",
    ]
    (vitals,) = plan["vitals"]
    codes = dict(vitals.params)["code"].split(",")
    assert "http://loinc.org|85354-9" in codes  # the blood pressure panel
    assert "http://loinc.org|29463-7" in codes  # body weight
    (results,) = plan["results"]
    assert results.limit == 20
    assert ("category", "laboratory") in results.params
    # Recent results are looked for in the last 90 days first; the unbounded search is the
    # fallback (same filters, no date).
    assert ("date", "ge2026-09-08T10:00:00Z") in results.params
    assert results.fallback is not None
    assert results.fallback.limit == 20
    assert [p for p in results.params if p[0] != "date"] == list(results.fallback.params)
    (appointments,) = plan["appointments"]
    assert ("date", "ge2026-12-07T10:00:00Z") in appointments.params
    assert all(("patient", "p1") in q.params for qs in plan.values() for q in qs)


def test_cursor_round_trip_and_refusals() -> None:
    instant = sort_instant("2026-01-02T03:04:05+01:00")
    assert instant == "2026-01-02T02:04:05.000000Z"
    notes = TimelineFilters(kinds=("note", "encounter"))
    cursor = seal_cursor(CURSORS, notes, "p1", instant, "Encounter/e1")
    assert open_cursor(CURSORS, notes, "p1", cursor) == (instant, "Encounter/e1")
    # The kinds' order does not matter; every other filter does.
    same = TimelineFilters(kinds=("encounter", "note"))
    assert open_cursor(CURSORS, same, "p1", cursor) == (instant, "Encounter/e1")
    foreign = [
        (CURSORS, notes, "p2", cursor),  # another patient
        (ListCursors(b"unit-secret", "t2"), notes, "p1", cursor),  # another tenant
        (CURSORS, TimelineFilters(kinds=("note",)), "p1", cursor),  # other kinds
        (CURSORS, TimelineFilters(kinds=notes.kinds, since="2026-01-01"), "p1", cursor),
        (CURSORS, TimelineFilters(kinds=notes.kinds, released_notes_only=True), "p1", cursor),
        (CURSORS, notes, "p1", "not-a-cursor"),
        (CURSORS, notes, "p1", "W10"),
    ]
    for cursors, filters, patient_id, bad in foreign:
        with pytest.raises(InvalidTimelineCursor) as caught:
            open_cursor(cursors, filters, patient_id, bad)
        assert (caught.value.status_code, caught.value.code) == (422, "invalid_timeline_cursor")


def test_partial_dates_sort_at_their_start() -> None:
    assert sort_instant("2025") == "2025-01-01T00:00:00.000000Z"
    assert sort_instant("2025-03") == "2025-03-01T00:00:00.000000Z"
    assert sort_instant("not a date") is None


async def test_timeline_merges_kinds_newest_first_and_pages_by_keyset() -> None:
    fhir = FakeFhir(
        {
            "Encounter": [
                {"resourceType": "Encounter", "id": "e1", "period": {"start": "2026-01-05"}}
            ],
            "ServiceRequest": [
                {"resourceType": "ServiceRequest", "id": "s1", "authoredOn": "2026-01-07"},
                {"resourceType": "ServiceRequest", "id": "s0", "authoredOn": "2026-01-05"},
            ],
            "DocumentReference": [
                {"resourceType": "DocumentReference", "id": "d1", "date": "2026-01-06T10:00:00Z"}
            ],
        }
    )
    service = ChartService(fhir)  # type: ignore[arg-type]
    kinds: tuple[TimelineKind, ...] = ("encounter", "order", "note")
    page = await service.timeline(
        "p1",
        _visible,
        filters=TimelineFilters(kinds=kinds),
        cursors=CURSORS,
        cursor=None,
        limit=3,
    )
    assert [item.id for item in page.items] == ["s1", "d1", "s0"]  # same day: key desc
    assert page.next is not None
    rest = await service.timeline(
        "p1",
        _visible,
        filters=TimelineFilters(kinds=kinds),
        cursors=CURSORS,
        cursor=page.next,
        limit=3,
    )
    assert [item.id for item in rest.items] == ["e1"]
    assert rest.next is None


def test_entries_read_values_and_flags() -> None:
    bp = to_entry(
        {
            "resourceType": "Observation",
            "id": "bp",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}], "text": "BP"},
            "component": [
                {"valueQuantity": {"value": 120, "unit": "mmHg"}},
                {"valueQuantity": {"value": 80, "unit": "mmHg"}},
            ],
            "interpretation": [{"coding": [{"code": "H"}]}],
        }
    )
    assert (bp.value, bp.code, bp.abnormal) == ("120/80 mmHg", "http://loinc.org|85354-9", True)
    medication = to_entry(
        {
            "resourceType": "MedicationRequest",
            "id": "m",
            "status": "active",
            "medicationReference": {"display": "Metformin"},
        }
    )
    assert (medication.display, medication.status) == ("Metformin", "active")


class WindowedLabs(FakeFhir):
    """Laboratory Observations: ``recent`` answer a search with a date bound, ``every`` one
    without (vitals searches by code get nothing)."""

    def __init__(self, recent: int, every: int) -> None:
        super().__init__({})
        self.recent, self.every = recent, every

    async def search(
        self, resource_type: str, params: Sequence[tuple[str, str]], *, single_page: bool = False
    ) -> Any:
        await super().search(resource_type, params, single_page=single_page)
        keys = dict(params)
        if resource_type != "Observation" or "category" not in keys:
            return {"resourceType": "Bundle", "type": "searchset"}
        count = min(int(keys["_count"]), self.recent if "date" in keys else self.every)
        day = dt.date(2026, 12, 6)
        entries = [
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": f"o{i}",
                    "effectiveDateTime": (day - dt.timedelta(days=i)).isoformat(),
                }
            }
            for i in range(count)
        ]
        return {"resourceType": "Bundle", "type": "searchset", "entry": entries}


def _lab_searches(fhir: FakeFhir) -> list[dict[str, str]]:
    return [
        dict(p) for t, p in fhir.searches if t == "Observation" and ("category", "laboratory") in p
    ]


async def test_recent_results_come_from_the_window_when_it_fills_the_section() -> None:
    fhir = WindowedLabs(recent=30, every=5000)
    sections = await ChartService(fhir).summary("p1", _visible)  # type: ignore[arg-type]
    searches = _lab_searches(fhir)
    assert len(searches) == 1
    assert "date" in searches[0]
    assert len(sections["results"].entries) == 20
    assert sections["results"].complete is False


@pytest.mark.parametrize(("recent", "every"), [(0, 3), (7, 12), (20, 20), (20, 400)])
async def test_a_window_that_does_not_fill_the_section_falls_back_to_every_result(
    recent: int, every: int
) -> None:
    fhir = WindowedLabs(recent=recent, every=every)
    sections = await ChartService(fhir).summary("p1", _visible)  # type: ignore[arg-type]
    searches = _lab_searches(fhir)
    assert ["date" in s for s in searches] == [True, False]  # the window, then every result
    assert len(sections["results"].entries) == min(every, 20)
    assert sections["results"].complete is (every <= 20)
