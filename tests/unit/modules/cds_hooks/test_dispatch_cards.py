"""order-dispatch: a dispatched order that is not active or is another patient's, and a
fulfillment task not for a dispatched order, give warning cards; the service is advertised."""

from __future__ import annotations

from typing import Any

import pytest

from ehr.core.errors import BadRequestError
from ehr.modules.cds_hooks.chart import PatientChart
from ehr.modules.cds_hooks.definitions import SERVICES, discovery
from ehr.modules.cds_hooks.dispatch_cards import dispatch_cards


def _order(ident: str, status: str, patient: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": ident,
        "status": status,
        "subject": {"reference": f"Patient/{patient}"},
    }


CHART = PatientChart(
    patient={"resourceType": "Patient", "id": "p1"},
    service_requests=[
        _order("active", "active"),
        _order("draft", "draft"),
        _order("foreign", "active", patient="p2"),
    ],
)


def _rules(context: dict[str, Any], chart: PatientChart | None = CHART) -> list[str]:
    return [c.rule_id for c in dispatch_cards(context, chart, patient_id="p1")]


def test_an_active_order_of_the_patient_dispatches_silently() -> None:
    context = {
        "patientId": "p1",
        "performer": "Organization/lab",
        "dispatchedOrders": ["ServiceRequest/active", "ServiceRequest/not-in-prefetch"],
        "fulfillmentTasks": [
            {
                "resourceType": "Task",
                "focus": {"reference": "ServiceRequest/active"},
                "for": {"reference": "Patient/p1"},
            }
        ],
    }
    assert _rules(context) == []


def test_a_draft_or_another_patients_order_is_warned_about() -> None:
    context = {
        "patientId": "p1",
        "performer": "Organization/lab",
        "dispatchedOrders": ["ServiceRequest/draft", "ServiceRequest/foreign"],
    }
    cards = dispatch_cards(context, CHART, patient_id="p1")
    assert [c.rule_id for c in cards] == [
        "order-dispatch:order-not-active",
        "order-dispatch:other-patient",
    ]
    assert "draft" in cards[0].card.summary
    assert all(c.card.indicator == "warning" for c in cards)


def test_a_task_for_an_undispatched_order_is_warned_about_and_old_names_are_read() -> None:
    context = {
        "patientId": "p1",
        "performer": "Organization/lab",
        "dispatched-orders": ["ServiceRequest/active"],
        "fulfillment-tasks": [
            {"resourceType": "Task", "focus": {"reference": "ServiceRequest/other"}}
        ],
    }
    assert _rules(context, None) == ["order-dispatch:task-not-dispatched"]


@pytest.mark.parametrize("orders", [None, [], ["not a reference"], "ServiceRequest/1"])
def test_dispatched_orders_are_required(orders: object) -> None:
    with pytest.raises(BadRequestError):
        dispatch_cards(
            {"patientId": "p1", "performer": "Organization/x", "dispatchedOrders": orders},
            CHART,
            patient_id="p1",
        )


def test_the_service_is_advertised_with_its_prefetch() -> None:
    assert "order-dispatch" in {s.hook for s in discovery().services}
    assert set(SERVICES["order-dispatch"].prefetch) == {
        "patient",
        "serviceRequests",
        "medicationRequests",
    }
