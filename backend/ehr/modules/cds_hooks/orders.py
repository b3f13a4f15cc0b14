"""Order checks for ``order-select`` / ``order-sign`` (and the medication hooks that reuse them).

Medication safety: the draft MedicationRequests (R4, STU3; DSTU2 ``MedicationOrder``) are the
proposed medications of a :func:`~ehr.modules.medication_safety.engine.check` against the
patient's active medications and allergies; every issue becomes a card (rendering of the
medication-safety module) with suggestions:

- **remove** the draft that causes it (``delete`` of the draft, when the draft has an id);
- **replace** it with a safer alternative where the knowledge base's management advice names one
  (:data:`ALTERNATIVES`: ``delete`` the draft + ``create`` a draft MedicationRequest for the
  alternative, without a dose — the prescriber chooses product and dose);
- for duplicate therapy with an active order: **stop the existing order** (``update`` of that
  MedicationRequest with ``status: stopped``).

Duplicate orders: a draft ServiceRequest (laboratory, imaging or other) whose code matches a
ServiceRequest of the patient authored in the last 24 hours (status active, on-hold or
completed), or another draft of the same call → a warning card with a suggestion to cancel the
draft (``delete``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ehr.modules.cds_hooks.cards import IssuedCard, fingerprint_of, new_card_uuid
from ehr.modules.cds_hooks.schemas import Action, Card, Coding, Source, Suggestion
from ehr.modules.medication_safety.engine import CheckResult, ImplicatedItem, Issue, IssueCategory
from ehr.modules.medication_safety.normalisation import RXNORM_SYSTEM
from ehr.modules.medication_safety.rendering import to_cds_card

__all__ = [
    "ALTERNATIVES",
    "DUPLICATE_ORDER_RULE",
    "DUPLICATE_WINDOW",
    "MEDICATION_ORDER_TYPES",
    "Alternative",
    "draft_reference",
    "duplicate_order_cards",
    "medication_cards",
]

# Draft resource types checked as medications (DSTU2 named the order MedicationOrder).
MEDICATION_ORDER_TYPES: Final = frozenset({"MedicationRequest", "MedicationOrder"})
DUPLICATE_ORDER_RULE: Final = "order:duplicate-service-request"
DUPLICATE_WINDOW: Final = dt.timedelta(hours=24)
ORDER_CHECK_TOPIC_SYSTEM: Final = "urn:ehr:cds:order-check"
ORDER_CHECK_SOURCE: Final = "EHR order checks"
_EXISTING_STATUSES: Final = frozenset({"active", "on-hold", "completed"})
_LAB: Final = "108252007"
_IMAGING: Final = "363679005"
_DUPLICATE_OVERRIDE_REASONS: Final = (
    ("clinically-indicated-repeat", "Repeat is clinically indicated"),
    ("previous-order-cancelled", "Previous order was cancelled or not done"),
    ("different-specimen-or-site", "Different specimen, site or laterality"),
)


@dataclass(frozen=True, slots=True)
class Alternative:
    """A safer choice for the proposed member of ``class_id`` when ``rule_id`` fires."""

    rule_id: str
    class_id: str
    code: str  # RxNorm
    display: str
    rationale: str


# Each row restates the management advice of its rule in the knowledge base (same citations).
ALTERNATIVES: Final[tuple[Alternative, ...]] = (
    Alternative(
        rule_id="DDI-WARFARIN-NSAIDS",
        class_id="ehr:class/nsaids",
        code="161",
        display="acetaminophen",
        rationale="The warfarin label advises acetaminophen rather than a systemic NSAID.",
    ),
    Alternative(
        rule_id="DDI-CLOPIDOGREL-CYP2C19-PPIS",
        class_id="ehr:class/cyp2c19-inhibiting-ppis",
        code="314200",
        display="pantoprazole 40 MG Delayed Release Oral Tablet",
        rationale=(
            "The clopidogrel label advises avoiding omeprazole and esomeprazole; pantoprazole "
            "inhibits CYP2C19 weakly."
        ),
    ),
)


def draft_reference(resource: Mapping[str, Any]) -> str | None:
    ident = resource.get("id")
    kind = resource.get("resourceType")
    if isinstance(ident, str) and ident and isinstance(kind, str):
        return f"{kind}/{ident}"
    return None


def _card(data: Mapping[str, Any]) -> Card:
    return Card.model_validate(data)


def _proposed(issue: Issue) -> ImplicatedItem | None:
    return next((i for i in issue.implicated if i.role == "proposed"), None)


def _alternative_for(issue: Issue) -> Alternative | None:
    proposed = _proposed(issue)
    if proposed is None:
        return None
    for alternative in ALTERNATIVES:
        if alternative.rule_id == issue.rule_id and proposed.class_id == alternative.class_id:
            return alternative
    # The class may sit on the other side's item when the rule matched in reverse.
    return None


def _replacement(draft: Mapping[str, Any], alternative: Alternative) -> dict[str, Any]:
    replacement = {
        k: v
        for k, v in draft.items()
        if k
        not in (
            "id",
            "meta",
            "text",
            "medicationCodeableConcept",
            "medicationReference",
            "dosageInstruction",
            "dispenseRequest",
            "contained",
        )
    }
    replacement.update(
        {
            "resourceType": "MedicationRequest",
            "status": "draft",
            "medicationCodeableConcept": {
                "coding": [
                    {
                        "system": RXNORM_SYSTEM,
                        "code": alternative.code,
                        "display": alternative.display,
                    }
                ],
                "text": alternative.display,
            },
            "note": [{"text": "Suggested by CDS as a safer alternative; choose the dose."}],
        }
    )
    replacement.setdefault("intent", "order")
    return replacement


def _suggestions(
    issue: Issue,
    drafts: Mapping[str, Mapping[str, Any]],
    active_orders: Mapping[str, Mapping[str, Any]],
) -> list[Suggestion]:
    suggestions: list[Suggestion] = []
    proposed = _proposed(issue)
    draft_ref = proposed.reference if proposed is not None else None
    draft = drafts.get(draft_ref) if draft_ref else None
    if proposed is not None and draft_ref and draft is not None:
        alternative = _alternative_for(issue)
        if alternative is not None:
            suggestions.append(
                Suggestion(
                    label=f"Replace {proposed.label} with {alternative.display}"[:200],
                    uuid=new_card_uuid(),
                    is_recommended=True,
                    actions=[
                        Action(
                            type="delete",
                            description=f"Remove the draft order for {proposed.label}",
                            resource_id=draft_ref,
                        ),
                        Action(
                            type="create",
                            description=(
                                f"Draft an order for {alternative.display}. {alternative.rationale}"
                            ),
                            resource=_replacement(draft, alternative),
                        ),
                    ],
                )
            )
        suggestions.append(
            Suggestion(
                label=f"Remove {proposed.label} from this order"[:200],
                uuid=new_card_uuid(),
                is_recommended=alternative is None
                and issue.category is not IssueCategory.DUPLICATE_THERAPY,
                actions=[
                    Action(
                        type="delete",
                        description=f"Remove the draft order for {proposed.label}",
                        resource_id=draft_ref,
                    )
                ],
            )
        )
    if issue.category is IssueCategory.DUPLICATE_THERAPY:
        for item in issue.implicated:
            existing = active_orders.get(item.reference or "") if item.role == "active" else None
            if existing is None or existing.get("resourceType") != "MedicationRequest":
                continue
            stopped = {**existing, "status": "stopped"}
            suggestions.append(
                Suggestion(
                    label=f"Stop the existing order for {item.label}"[:200],
                    uuid=new_card_uuid(),
                    is_recommended=False,
                    actions=[
                        Action(
                            type="update",
                            description=f"Set the existing order for {item.label} to stopped",
                            resource=stopped,
                        )
                    ],
                )
            )
    return suggestions


def _issue_fingerprint(issue: Issue, patient_id: str) -> str:
    # Not the roles: at order-select the other drafts are context, at order-sign proposed.
    items = sorted({i.reference or i.id for i in issue.implicated})
    return fingerprint_of(patient_id, issue.rule_id, *items)


def medication_cards(
    result: CheckResult,
    *,
    patient_id: str,
    drafts: Mapping[str, Mapping[str, Any]],
    active_orders: Mapping[str, Mapping[str, Any]],
) -> list[IssuedCard]:
    """One card per issue (suggestions as in the module doc); ``drafts`` and ``active_orders``
    map references (``MedicationRequest/1``) to the resources."""
    issued: list[IssuedCard] = []
    for issue in result.issues:
        data = to_cds_card(issue, kb_version=result.kb_version)
        suggestions = _suggestions(issue, drafts, active_orders)
        if suggestions:
            data["suggestions"] = [
                s.model_dump(by_alias=True, exclude_none=True) for s in suggestions
            ]
            data["selectionBehavior"] = "at-most-one"
        issued.append(
            IssuedCard(
                card=_card(data),
                rule_id=issue.rule_id,
                fingerprint=_issue_fingerprint(issue, patient_id),
            )
        )
    return issued


# --------------------------------------------------------------------------- duplicate orders


def _codes(resource: Mapping[str, Any]) -> set[tuple[str, str]]:
    code = resource.get("code")
    codings = code.get("coding") if isinstance(code, Mapping) else None
    return {
        (c["system"], c["code"])
        for c in codings or []
        if isinstance(c, Mapping)
        and isinstance(c.get("system"), str)
        and isinstance(c.get("code"), str)
    }


def _label(resource: Mapping[str, Any]) -> str:
    code = resource.get("code")
    if isinstance(code, Mapping):
        if isinstance(code.get("text"), str) and code["text"].strip():
            return str(code["text"]).strip()
        for coding in code.get("coding") or []:
            if isinstance(coding, Mapping) and isinstance(coding.get("display"), str):
                return str(coding["display"])
            if isinstance(coding, Mapping) and isinstance(coding.get("code"), str):
                return str(coding["code"])
    return "this order"


def _kind(resource: Mapping[str, Any]) -> str:
    for category in resource.get("category") or []:
        for coding in category.get("coding") or [] if isinstance(category, Mapping) else []:
            if isinstance(coding, Mapping) and coding.get("code") == _LAB:
                return "laboratory test"
            if isinstance(coding, Mapping) and coding.get("code") == _IMAGING:
                return "imaging study"
    return "order"


def _authored(resource: Mapping[str, Any]) -> dt.datetime | None:
    value = resource.get("authoredOn")
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _hours_ago(now: dt.datetime, when: dt.datetime) -> str:
    hours = max(0, int((now - when).total_seconds() // 3600))
    return "less than 1 hour ago" if hours == 0 else f"{hours} h ago"


def _duplicate_card(
    draft: Mapping[str, Any], reference: str | None, prior: str, patient_id: str, matched: str
) -> IssuedCard:
    label = _label(draft)
    kind = _kind(draft)
    summary = f"Duplicate {kind}: {label} {prior}"
    if len(summary) > 139:
        summary = summary[:138].rstrip() + "…"
    suggestions = None
    if reference is not None:
        suggestions = [
            Suggestion(
                label="Cancel this duplicate order",
                uuid=new_card_uuid(),
                is_recommended=True,
                actions=[
                    Action(
                        type="delete",
                        description=f"Remove the draft order for {label}",
                        resource_id=reference,
                    )
                ],
            )
        ]
    card = Card(
        uuid=new_card_uuid(),
        summary=summary,
        indicator="warning",
        detail=(
            f"The same {kind} ({matched}) was {prior.removeprefix('was ')}. "
            "Repeating it within 24 hours is rarely needed; cancel the draft unless a repeat "
            "is clinically indicated."
        ),
        source=Source(
            label=ORDER_CHECK_SOURCE,
            topic=Coding(
                system=ORDER_CHECK_TOPIC_SYSTEM,
                code=DUPLICATE_ORDER_RULE,
                display="Duplicate order within 24 hours",
            ),
        ),
        suggestions=suggestions,
        selection_behavior="at-most-one" if suggestions else None,
        override_reasons=[
            Coding(system=ORDER_CHECK_TOPIC_SYSTEM, code=code, display=display)
            for code, display in _DUPLICATE_OVERRIDE_REASONS
        ],
    )
    key = reference or ",".join(sorted(f"{s}|{c}" for s, c in _codes(draft)))
    return IssuedCard(
        card=card,
        rule_id=DUPLICATE_ORDER_RULE,
        fingerprint=fingerprint_of(patient_id, DUPLICATE_ORDER_RULE, key),
    )


def _matched(codes: set[tuple[str, str]]) -> str:
    _system, code = sorted(codes)[0]
    return f"{code}"


def duplicate_order_cards(
    drafts: Sequence[Mapping[str, Any]],
    existing: Sequence[Mapping[str, Any]],
    *,
    patient_id: str,
    now: dt.datetime,
) -> list[IssuedCard]:
    """Cards for draft ServiceRequests that repeat a recent order (see the module doc)."""
    cards: list[IssuedCard] = []
    draft_refs = {draft_reference(d) for d in drafts}
    recent: list[tuple[set[tuple[str, str]], dt.datetime]] = []
    for resource in existing:
        if resource.get("resourceType") != "ServiceRequest":
            continue
        if draft_reference(resource) in draft_refs:
            continue
        if resource.get("status") not in _EXISTING_STATUSES:
            continue
        authored = _authored(resource)
        if authored is None or not (
            now - DUPLICATE_WINDOW <= authored <= now + dt.timedelta(minutes=5)
        ):
            continue
        codes = _codes(resource)
        if codes:
            recent.append((codes, authored))
    seen: list[set[tuple[str, str]]] = []
    for draft in drafts:
        if draft.get("resourceType") != "ServiceRequest":
            continue
        codes = _codes(draft)
        if not codes:
            continue
        reference = draft_reference(draft)
        earlier = [when for prior_codes, when in recent if prior_codes & codes]
        if earlier:
            common = next(p for p, _ in recent if p & codes) & codes
            cards.append(
                _duplicate_card(
                    draft,
                    reference,
                    f"was ordered {_hours_ago(now, max(earlier))}",
                    patient_id,
                    _matched(common),
                )
            )
        elif any(prior & codes for prior in seen):
            common = next(p for p in seen if p & codes) & codes
            cards.append(
                _duplicate_card(
                    draft,
                    reference,
                    "is already in this order session",
                    patient_id,
                    _matched(common),
                )
            )
        seen.append(codes)
    return cards
