"""``order-dispatch`` (CDS Hooks library, context ``patientId``, ``dispatchedOrders``,
``performer``, ``fulfillmentTasks``): checks of orders being sent to a performer.

- a dispatched order the chart holds that is not active (a draft, on hold, revoked, completed,
  entered in error: only a signed, active order is fulfilled) or is another patient's → a warning;
- a fulfillment Task whose ``focus`` is not one of the dispatched orders, or whose ``for`` is
  another patient → a warning.

A dispatched order the chart does not hold (older than the prefetch's orders) is not reported:
absence from a bounded prefetch proves nothing. The examples' older spelling
(``dispatched-orders``, ``fulfillment-tasks``) is read too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from ehr.core.errors import BadRequestError
from ehr.fhir import reference_parts
from ehr.modules.cds_hooks.cards import IssuedCard, fingerprint_of, new_card_uuid
from ehr.modules.cds_hooks.chart import PatientChart
from ehr.modules.cds_hooks.orders import ORDER_CHECK_SOURCE, ORDER_CHECK_TOPIC_SYSTEM
from ehr.modules.cds_hooks.schemas import Card, Coding, Source

__all__ = ["MAX_DISPATCHED", "dispatch_cards", "dispatched_orders"]

MAX_DISPATCHED: Final = 100
_RULE_NOT_ACTIVE: Final = "order-dispatch:order-not-active"
_RULE_OTHER_PATIENT: Final = "order-dispatch:other-patient"
_RULE_TASK_MISMATCH: Final = "order-dispatch:task-not-dispatched"


def _field(context: Mapping[str, Any], name: str, legacy: str) -> Any:
    return context.get(name, context.get(legacy))


def dispatched_orders(context: Mapping[str, Any]) -> list[str]:
    """The dispatched order references (400 unless a list of at most 100 references)."""
    value = _field(context, "dispatchedOrders", "dispatched-orders")
    if (
        not isinstance(value, list)
        or not value
        or len(value) > MAX_DISPATCHED
        or not all(isinstance(v, str) and reference_parts(v) is not None for v in value)
    ):
        raise BadRequestError(
            "context.dispatchedOrders (1 to 100 order references) is required for hook "
            "'order-dispatch'"
        )
    return list(value)


def _card(summary: str, detail: str, rule: str, display: str, *key: str) -> IssuedCard:
    card = Card(
        uuid=new_card_uuid(),
        summary=summary[:139],
        indicator="warning",
        detail=detail,
        source=Source(
            label=ORDER_CHECK_SOURCE,
            topic=Coding(system=ORDER_CHECK_TOPIC_SYSTEM, code=rule, display=display),
        ),
    )
    return IssuedCard(card=card, rule_id=rule, fingerprint=fingerprint_of(rule, *key))


def _subject_is(resource: Mapping[str, Any], field: str, patient_id: str) -> bool:
    value = resource.get(field)
    parts = reference_parts(value.get("reference") if isinstance(value, Mapping) else None)
    return parts is None or (parts.resource_type, parts.resource_id) == ("Patient", patient_id)


def dispatch_cards(
    context: Mapping[str, Any], chart: PatientChart | None, *, patient_id: str
) -> list[IssuedCard]:
    """The cards of one ``order-dispatch`` call (module doc)."""
    dispatched = dispatched_orders(context)
    issued: list[IssuedCard] = []
    held: dict[str, Mapping[str, Any]] = {}
    if chart is not None:
        for resource in (*chart.service_requests, *chart.medication_requests):
            if isinstance(resource.get("id"), str):
                held[f"{resource.get('resourceType')}/{resource['id']}"] = resource
    for reference in dispatched:
        order = held.get(reference)
        if order is None:
            continue
        if not _subject_is(order, "subject", patient_id):
            issued.append(
                _card(
                    f"Dispatched order {reference} is another patient's",
                    "The order's subject is not the patient in context; do not dispatch it.",
                    _RULE_OTHER_PATIENT,
                    "Dispatched order of another patient",
                    patient_id,
                    reference,
                )
            )
        elif order.get("status") != "active":
            status = str(order.get("status"))
            issued.append(
                _card(
                    f"Dispatched order {reference} is not active ({status})",
                    f"Only a signed, active order is fulfilled; this one is **{status}**. "
                    "Sign or resume it first, or do not dispatch it.",
                    _RULE_NOT_ACTIVE,
                    "Dispatched order not active",
                    patient_id,
                    reference,
                    status,
                )
            )
    tasks = _field(context, "fulfillmentTasks", "fulfillment-tasks")
    for task in tasks[:MAX_DISPATCHED] if isinstance(tasks, Sequence) else ():
        if not isinstance(task, Mapping) or task.get("resourceType") != "Task":
            continue
        focus = task.get("focus")
        target = focus.get("reference") if isinstance(focus, Mapping) else None
        if target not in dispatched or not _subject_is(task, "for", patient_id):
            issued.append(
                _card(
                    "A fulfillment task does not match the dispatched orders",
                    "Each fulfillment Task's focus is one of the dispatched orders and its "
                    "`for` is the patient in context.",
                    _RULE_TASK_MISMATCH,
                    "Fulfillment task not for a dispatched order",
                    patient_id,
                    str(target),
                )
            )
    return issued
