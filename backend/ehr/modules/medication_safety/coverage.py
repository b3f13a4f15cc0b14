"""What a check did with each input item (checked, unresolved, not checkable) and the
"unable to check" issue of a proposed medication that was not screened at all (ADR 0028)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ehr.modules.medication_safety.implicated import IngredientNamer
from ehr.modules.medication_safety.issues import (
    BUILTIN_RULE_OUTCOMES,
    AllergyInput,
    DoseCheck,
    ImplicatedItem,
    Issue,
    IssueCategory,
    ItemState,
    ItemStatus,
    MedicationInput,
    Policy,
    Role,
    UncheckedItem,
    UnresolvedCode,
)
from ehr.modules.medication_safety.knowledge import RULE_UNABLE_TO_CHECK, KnowledgeBase
from ehr.modules.medication_safety.resolution import ResolvedAllergy, ResolvedMedication

__all__ = ["item_statuses", "unable_to_check"]


def item_statuses(
    medications: Sequence[tuple[Sequence[MedicationInput], Role, Sequence[ResolvedMedication]]],
    allergies: Sequence[AllergyInput],
    known_allergies: Sequence[ResolvedAllergy],
    unchecked: Sequence[UncheckedItem],
    kb: KnowledgeBase,
    namer: IngredientNamer,
    dose_checks: Mapping[str, DoseCheck],
) -> list[ItemStatus]:
    """One status per input item, in input order (proposed, active, allergies)."""
    reasons: dict[tuple[str, str], str] = {(u.kind, u.item_id): u.reason for u in unchecked}

    def state(kind: str, item_id: str) -> ItemState:
        reason = reasons.get((kind, item_id))
        return "unresolved" if reason == "no-code-resolved" else "not_checkable"

    statuses: list[ItemStatus] = []
    for inputs, role, resolved in medications:
        by_id = {id(m.item): m for m in resolved}
        for med in inputs:
            found = by_id.get(id(med))
            if found is None:
                statuses.append(
                    ItemStatus(med.id, "medication", role, med.label, state("medication", med.id))
                )
                continue
            statuses.append(
                ItemStatus(
                    med.id,
                    "medication",
                    role,
                    med.label,
                    "checked",
                    tuple(namer(x) for x in found.ingredients),
                    tuple(x for x in found.ingredients if x not in kb.ingredients),
                    dose_checks.get(med.id) if role == "proposed" else None,
                )
            )
    by_allergy = {id(a.item): a for a in known_allergies}
    for allergy in allergies:
        known = by_allergy.get(id(allergy))
        if known is None:
            statuses.append(
                ItemStatus(
                    allergy.id, "allergy", "allergy", allergy.label, state("allergy", allergy.id)
                )
            )
            continue
        ingredients = sorted(known.ingredients, key=int)
        statuses.append(
            ItemStatus(
                allergy.id,
                "allergy",
                "allergy",
                allergy.label,
                "checked",
                tuple(namer(x) for x in ingredients),
                tuple(x for x in ingredients if x not in kb.ingredients),
            )
        )
    return statuses


def unable_to_check(
    proposed: Sequence[MedicationInput],
    statuses: Sequence[ItemStatus],
    unresolved: Sequence[UnresolvedCode],
    policy: Policy,
) -> Iterable[Issue]:
    """An issue for each proposed medication that was not screened at all (never silent)."""
    states = {(s.role, s.item_id): s.status for s in statuses}
    _, severity, display = BUILTIN_RULE_OUTCOMES[RULE_UNABLE_TO_CHECK]
    for med in proposed:
        status = states.get(("proposed", med.id))
        if status == "checked":
            continue
        codes = [f"{u.system}|{u.code}" for u in unresolved if u.item_id == med.id]
        why = (
            f"none of its codes is known ({', '.join(codes)})"
            if status == "unresolved"
            else "it carries no medication code (free text only)"
        )
        yield Issue(
            category=IssueCategory.UNABLE_TO_CHECK,
            rule_id=RULE_UNABLE_TO_CHECK,
            severity=severity,
            display=policy.display_for(RULE_UNABLE_TO_CHECK, severity, display),
            kb_display=display,
            title=f"Unable to check {med.label}: not screened for interactions or allergies",
            implicated=(
                ImplicatedItem("medication", "proposed", med.id, med.label, med.reference, ()),
            ),
            mechanism=None,
            consequence=(
                f"{med.label} was not checked against the patient's medications and allergies: "
                f"{why}. No finding does not mean it is safe."
            ),
            management=(
                "Choose the product from the coded formulary (RxNorm or NDC) so it can be "
                "checked, or review its interactions and the patient's allergies yourself."
            ),
            citations=(),
        )
