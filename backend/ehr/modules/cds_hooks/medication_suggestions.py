"""The suggestions of a medication-safety card (order hooks).

- **remove** the draft that causes it (``delete`` of the draft, when the draft has an id);
- **replace** it with a safer alternative where the knowledge base's management advice names one
  (:data:`ALTERNATIVES`: ``delete`` the draft + ``create`` a draft MedicationRequest for the
  alternative, without a dose — the prescriber chooses product and dose);
- for duplicate therapy with an active order: **stop the existing order** (``update`` of that
  MedicationRequest with ``status: stopped``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ehr.modules.cds_hooks.cards import new_card_uuid
from ehr.modules.cds_hooks.schemas import Action, Suggestion
from ehr.modules.medication_safety import RXNORM_SYSTEM, ImplicatedItem, Issue, IssueCategory

__all__ = ["ALTERNATIVES", "Alternative", "suggestions_for"]


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


def suggestions_for(
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
