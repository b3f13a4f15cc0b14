"""The medication-safety part of a CDS Hooks call: the chart gathered for the call is checked by
:mod:`ehr.modules.medication_safety` through one entry point per kind of hook, and the results
become cards.

``order-select`` / ``order-sign`` / ``medication-refill`` (and the legacy ``medication-prescribe``,
``order-review``)
    the draft medication orders → :meth:`MedicationChecks.check_orders` (order-select: the
    selected drafts are proposed, the others count as active); cards with suggestions
    (:mod:`.medication_cards`).
``patient-view`` / ``encounter-discharge``
    the current medication list → :meth:`MedicationChecks.check_medication_list`; patient-view
    also reminds of each active high-criticality allergy.
``allergyintolerance-create``
    the allergies being recorded → :meth:`MedicationChecks.check_new_allergies`.

Restricted records are never read by decision support (no break-glass): when the record had
some, a data card says so. A call renders at most :data:`~.schemas.MAX_CARDS` issues (the most
severe); how many were left out is counted on the capping card (:func:`.data_cards.capped_cards`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from ehr.core.errors import BadRequestError
from ehr.modules.cds_hooks.cards import IssuedCard
from ehr.modules.cds_hooks.chart import PatientChart
from ehr.modules.cds_hooks.data_cards import restricted_card
from ehr.modules.cds_hooks.definitions import ServiceDefinition
from ehr.modules.cds_hooks.hook_requests import new_allergies, order_drafts
from ehr.modules.cds_hooks.medication_cards import allergy_reminder_cards, medication_cards
from ehr.modules.cds_hooks.orders import MEDICATION_ORDER_TYPES, draft_reference
from ehr.modules.cds_hooks.schemas import MAX_CARDS, CdsRequest
from ehr.modules.medication_safety import (
    CheckResult,
    MedicationChecks,
    PatientRecord,
    RecordCheck,
)

__all__ = [
    "MEDICATION_LIST_HOOKS",
    "ORDER_HOOKS",
    "MedicationCards",
    "medication_safety_cards",
    "record_of",
]

# The hooks whose draft orders are checked (their orders' context field: .hook_requests).
ORDER_HOOKS: Final = frozenset(
    {"order-select", "order-sign", "medication-refill", "medication-prescribe", "order-review"}
)
# The hooks that check the current medication list.
MEDICATION_LIST_HOOKS: Final = frozenset({"patient-view", "encounter-discharge"})


@dataclass(slots=True)
class MedicationCards:
    """A call's medication-safety cards: ``notices`` (data cards) come before any other card of
    the call, ``cards`` after its care-gap cards; ``omitted`` issues were not rendered."""

    notices: list[IssuedCard] = field(default_factory=list)
    cards: list[IssuedCard] = field(default_factory=list)
    omitted: int = 0


def record_of(chart: PatientChart) -> PatientRecord:
    """The chart's medication-safety record (the patient, orders, statements, allergies, and
    the latest body weight when the chart's observations hold one)."""
    weights = [
        o
        for o in chart.observations
        if any(
            c.get("system") == "http://loinc.org" and c.get("code") == "29463-7"
            for c in (o.get("code") or {}).get("coding") or []
            if isinstance(c, dict)
        )
    ]
    latest = max(weights, key=lambda o: str(o.get("effectiveDateTime") or ""), default=None)
    return PatientRecord(
        patient=chart.patient,
        requests=chart.medication_requests,
        statements=chart.medication_statements,
        allergies=chart.allergies,
        medications=chart.medications,
        complete=chart.complete,
        weight=latest,
    )


def _most_severe(result: CheckResult, limit: int = MAX_CARDS) -> tuple[CheckResult, int]:
    """``result`` with at most ``limit`` issues (they come most severe first), and how many
    were left out: no call renders more cards than a response can carry."""
    if len(result.issues) <= limit:
        return result, 0
    return replace(result, issues=result.issues[:limit]), len(result.issues) - limit


def _cards_of(
    found: RecordCheck,
    *,
    patient_id: str,
    reminders: list[IssuedCard] | None = None,
    drafts: Mapping[str, Mapping[str, Any]] | None = None,
    active_orders: Mapping[str, Mapping[str, Any]] | None = None,
    capped: bool = True,
) -> MedicationCards:
    """The cards of a check: the restricted-records notice, ``reminders``, then one card per
    issue (the :data:`~.schemas.MAX_CARDS` most severe when ``capped``)."""
    outcome = MedicationCards(cards=list(reminders or ()))
    profile = found.profile
    if profile is not None and any(s.reason == "restricted" for s in profile.skipped):
        outcome.notices.append(restricted_card())
    if found.result is not None:
        result = found.result
        if capped:
            result, outcome.omitted = _most_severe(result)
        outcome.cards += medication_cards(
            result,
            patient_id=patient_id,
            drafts=drafts or {},
            active_orders=active_orders or {},
        )
    return outcome


def _active_orders(chart: PatientChart | None) -> dict[str, Mapping[str, Any]]:
    return {
        f"MedicationRequest/{r['id']}": r
        for r in (chart.medication_requests if chart is not None else ())
        if isinstance(r.get("id"), str)
    }


def medication_safety_cards(
    checks: MedicationChecks,
    definition: ServiceDefinition,
    request: CdsRequest,
    chart: PatientChart | None,
    *,
    patient_id: str,
    now: dt.datetime,
) -> MedicationCards:
    """The medication-safety cards of one call (see the module doc). Synchronous: CPU work that
    grows with the (capped) orders and records, run in a worker thread by the caller."""
    hook = definition.hook
    record = record_of(chart) if chart is not None else None
    if hook in ORDER_HOOKS:
        drafts, selected = order_drafts(hook, request)
        orders = [d for d in drafts if d.get("resourceType") in MEDICATION_ORDER_TYPES]
        found = checks.check_orders(record, orders, selected=selected, now=now)
        return _cards_of(
            found,
            patient_id=patient_id,
            drafts={ref: d for d in orders if (ref := draft_reference(d))},
            active_orders=_active_orders(chart),
        )
    if hook in MEDICATION_LIST_HOOKS and chart is not None and record is not None:
        found = checks.check_medication_list(record, now=now)
        reminders = (
            allergy_reminder_cards(chart.allergies, patient_id) if hook == "patient-view" else []
        )
        return _cards_of(found, patient_id=patient_id, reminders=reminders)
    if hook == "allergyintolerance-create":
        allergies = new_allergies(request.context)
        if not allergies:
            raise BadRequestError(
                "context.allergyIntolerance (an AllergyIntolerance) is required for hook "
                "'allergyintolerance-create'"
            )
        found = checks.check_new_allergies(record, allergies, now=now)
        return _cards_of(found, patient_id=patient_id, capped=False)
    return MedicationCards()  # encounter-start, appointment-book: care gaps only
