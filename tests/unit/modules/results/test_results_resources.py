"""The FHIR resources a report is made of, and reading them back (views, escalation)."""

from __future__ import annotations

import datetime as dt

from ehr.modules.results.critical import CriticalTable
from ehr.modules.results.interpretation import judge
from ehr.modules.results.resources import (
    acknowledgement_task,
    completed_task,
    diagnostic_report,
    observation,
)
from ehr.modules.results.schemas import ResultRecord
from ehr.modules.results.views import acknowledgement_of, observation_view, report_view

NOW = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)
WHO = {"identifier": {"system": "urn:ehr:user", "value": "u1"}, "display": "lab.tech"}


def _payload() -> ResultRecord:
    return ResultRecord.model_validate(
        {
            "order_id": "sr1",
            "code": "24323-8",
            "effective": "2026-12-07T07:00:00Z",
            "observations": [
                {
                    "code": "2823-3",
                    "display": "Potassium",
                    "quantity": {"value": 6.9, "unit": "mmol/L"},
                    "reference_range": {"low": 3.5, "high": 5.1},
                }
            ],
        }
    )


def test_observation_and_report_shape() -> None:
    payload = _payload()
    result = payload.observations[0]
    verdict = judge(result, CriticalTable(), field="o")
    obs = observation(
        "p1",
        result,
        verdict,
        status="final",
        effective=payload.effective,
        issued=NOW,
        order_id="sr1",
        performer=WHO,
    )
    assert obs["category"][0]["coding"][0]["code"] == "laboratory"
    assert obs["valueQuantity"] == {
        "value": 6.9,
        "unit": "mmol/L",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    }
    assert obs["interpretation"][0]["coding"][0]["code"] == "HH"
    assert obs["basedOn"] == [{"reference": "ServiceRequest/sr1"}]
    assert obs["referenceRange"][0]["low"]["value"] == 3.5
    report = diagnostic_report("p1", payload, issued=NOW, result_refs=["urn:uuid:x"], performer=WHO)
    assert report["result"] == [{"reference": "urn:uuid:x"}]
    assert report["category"][0]["coding"][0]["code"] == "LAB"
    assert report["effectiveDateTime"] == "2026-12-07T07:00:00Z"

    view = observation_view({**obs, "id": "o1", "meta": {"versionId": "1"}})
    assert (view.value, view.unit, view.interpretation, view.critical) == (
        6.9,
        "mmol/L",
        "HH",
        True,
    )
    assert (view.reference_low, view.reference_high) == (3.5, 5.1)


def test_task_is_escalated_after_the_delay_and_completed_with_who_when_comment() -> None:
    task = acknowledgement_task(
        "p1",
        report_ref="DiagnosticReport/r1",
        critical_refs=["Observation/o1"],
        authored=NOW - dt.timedelta(minutes=90),
        order_id="sr1",
        owner=None,
        location_id="ward-3",
        requester=WHO,
    )
    assert task["code"]["coding"][0]["code"] == "acknowledge-critical-result"
    assert (task["status"], task["priority"], task["intent"]) == ("requested", "stat", "order")
    assert task["location"] == {"reference": "Location/ward-3"}
    task["id"] = "t1"
    hour = dt.timedelta(minutes=60)
    assert acknowledgement_of(task, now=NOW, escalation=hour).escalated
    assert not acknowledgement_of(task, now=NOW, escalation=2 * hour).escalated

    nurse = {"identifier": {"system": "urn:ehr:user", "value": "n1"}, "display": "nurse.n"}
    done = completed_task(task, who=nurse, when=NOW, comment="Read back; repeat K+ ordered")
    shown = acknowledgement_of(done, now=NOW, escalation=hour)
    assert shown.status == "completed"
    assert not shown.escalated
    assert shown.acknowledged_by == "nurse.n"
    assert shown.acknowledged_at == NOW
    assert shown.comment == "Read back; repeat K+ ordered"


def test_report_view_collects_its_observations() -> None:
    report = {
        "resourceType": "DiagnosticReport",
        "id": "r1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "24323-8"}]},
        "basedOn": [{"reference": "ServiceRequest/sr1"}],
        "result": [{"reference": "Observation/o1"}],
    }
    obs = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
        "valueQuantity": {"value": 4.1, "code": "mmol/L"},
    }
    view = report_view(
        report, "p1", {"Observation/o1": obs}, None, now=NOW, escalation=dt.timedelta(hours=1)
    )
    assert view.order_id == "sr1"
    assert [o.id for o in view.observations] == ["o1"]
    assert not view.critical
    assert view.acknowledgement is None
