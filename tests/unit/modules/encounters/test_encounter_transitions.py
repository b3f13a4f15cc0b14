"""The FHIR R4 Encounter workflow: which status changes are allowed, and what they record."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from ehr.modules.encounters.service import (
    ALLOWED_TRANSITIONS,
    EncounterTransitionError,
    check_transition,
    to_summary,
    with_status,
)

ALLOWED = [
    ("planned", "arrived"),
    ("planned", "triaged"),
    ("planned", "in-progress"),
    ("planned", "cancelled"),
    ("arrived", "triaged"),
    ("arrived", "in-progress"),
    ("arrived", "cancelled"),
    ("triaged", "in-progress"),
    ("triaged", "cancelled"),
    ("in-progress", "onleave"),
    ("in-progress", "finished"),
    ("in-progress", "cancelled"),
    ("onleave", "in-progress"),
    ("onleave", "finished"),
]
STATUSES = sorted(ALLOWED_TRANSITIONS)


@pytest.mark.parametrize(("current", "target"), ALLOWED)
def test_the_fhir_workflow_is_allowed(current: str, target: str) -> None:
    check_transition(current, target)


@pytest.mark.parametrize("current", [s for s in STATUSES if s != "entered-in-error"])
def test_entered_in_error_is_reachable_from_any_status(current: str) -> None:
    check_transition(current, "entered-in-error")


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (c, t)
        for c in STATUSES
        for t in STATUSES
        if (c, t) not in ALLOWED and not (t == "entered-in-error" and c != t)
    ],
)
def test_everything_else_is_refused_naming_from_and_to(current: str, target: str) -> None:
    with pytest.raises(EncounterTransitionError) as caught:
        check_transition(current, target)
    assert caught.value.status_code == 409
    assert caught.value.code == "encounter_transition_not_allowed"
    assert caught.value.extra == {"from": current, "to": target}


def _encounter(status: str, **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": "e1",
        "meta": {"versionId": "2"},
        "status": status,
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2026-01-01T08:00:00Z"},
        **fields,
    }


def test_the_status_left_is_kept_in_history_with_its_period() -> None:
    at = dt.datetime(2026, 1, 1, 9, 30, tzinfo=dt.UTC)
    moved = with_status(_encounter("in-progress"), "onleave", at=at)
    assert moved["status"] == "onleave"
    assert moved["statusHistory"] == [
        {
            "status": "in-progress",
            "period": {"start": "2026-01-01T08:00:00Z", "end": "2026-01-01T09:30:00Z"},
        }
    ]
    later = with_status(moved, "in-progress", at=at + dt.timedelta(hours=1))
    assert later["statusHistory"][-1] == {
        "status": "onleave",
        "period": {"start": "2026-01-01T09:30:00Z", "end": "2026-01-01T10:30:00Z"},
    }


def test_a_planned_encounter_starts_when_it_begins() -> None:
    at = dt.datetime(2026, 1, 2, 7, 0, tzinfo=dt.UTC)
    moved = with_status(_encounter("planned"), "in-progress", at=at)
    assert moved["period"]["start"] == "2026-01-02T07:00:00Z"


def test_with_status_refuses_before_changing_anything() -> None:
    original = _encounter("finished")
    with pytest.raises(EncounterTransitionError):
        with_status(original, "in-progress")
    assert original["status"] == "finished"
    assert "statusHistory" not in original


def test_summary_reads_class_disposition_and_history() -> None:
    resource = _encounter(
        "finished",
        **{
            "class": {"code": "IMP"},
            "hospitalization": {"dischargeDisposition": {"coding": [{"code": "home"}]}},
            "statusHistory": [{"status": "in-progress", "period": {"start": "a", "end": "b"}}],
        },
    )
    summary = to_summary(resource, "p1")
    assert summary.version == "2"
    assert summary.class_code == "IMP"
    assert summary.discharge_disposition is not None
    assert summary.discharge_disposition.code == "home"
    assert [h.status for h in summary.status_history] == ["in-progress"]
