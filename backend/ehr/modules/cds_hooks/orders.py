"""Duplicate-order checks of ``order-select`` / ``order-sign``, and the drafts of a call.

A draft ServiceRequest (laboratory, imaging or other) whose code matches a ServiceRequest of the
patient authored in the last 24 hours (status active, on-hold or completed), or another draft of
the same call → a warning card with a suggestion to cancel the draft (``delete``). The draft
MedicationRequests (R4, STU3; DSTU2 ``MedicationOrder``: :data:`MEDICATION_ORDER_TYPES`) are
checked by medication safety (:mod:`.flows`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ehr.fhir import codings, concept_text, parse_fhir_date
from ehr.modules.cds_hooks.cards import IssuedCard, fingerprint_of, new_card_uuid
from ehr.modules.cds_hooks.schemas import Action, Card, Coding, Source, Suggestion

__all__ = [
    "DUPLICATE_ORDER_RULE",
    "DUPLICATE_WINDOW",
    "MEDICATION_ORDER_TYPES",
    "draft_reference",
    "duplicate_order_cards",
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


def draft_reference(resource: Mapping[str, Any]) -> str | None:
    ident = resource.get("id")
    kind = resource.get("resourceType")
    if isinstance(ident, str) and ident and isinstance(kind, str):
        return f"{kind}/{ident}"
    return None


# --------------------------------------------------------------------------- duplicate orders


def _codes(resource: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {(c.system, c.code) for c in codings(resource.get("code")) if c.system is not None}


def _label(resource: Mapping[str, Any]) -> str:
    code = resource.get("code")
    text = concept_text(code)
    if text is not None:
        return text
    first = next(iter(codings(code, limit=1)), None)
    return (first.display or first.code) if first is not None else "this order"


def _kind(resource: Mapping[str, Any]) -> str:
    categories = resource.get("category")
    for category in categories if isinstance(categories, list) else ():
        for coding in codings(category):
            if coding.code == _LAB:
                return "laboratory test"
            if coding.code == _IMAGING:
                return "imaging study"
    return "order"


def _authored(resource: Mapping[str, Any]) -> dt.datetime | None:
    """When the order was authored: a dateTime, or midnight UTC of a full date (a partial date
    is not precise enough to compare with the 24-hour window)."""
    authored = parse_fhir_date(resource.get("authoredOn"))
    if authored is None or (authored.moment is None and authored.first != authored.last):
        return None
    return authored.start


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
