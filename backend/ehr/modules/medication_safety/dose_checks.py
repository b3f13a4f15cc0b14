"""The dose-range issues of a proposed medication: its dosage against the dose limits of its
ingredients (the computation is :mod:`.dosing`; ADR 0028)."""

from __future__ import annotations

from ehr.modules.medication_safety.dosing import DoseFinding, administration_of, evaluate
from ehr.modules.medication_safety.implicated import IngredientNamer, med_item, route_ok
from ehr.modules.medication_safety.issues import (
    BUILTIN_RULE_OUTCOMES,
    DoseCheck,
    Issue,
    IssueCategory,
    PatientContext,
    Policy,
)
from ehr.modules.medication_safety.knowledge import RULE_DOSE_NOT_CHECKED, KnowledgeBase
from ehr.modules.medication_safety.resolution import ResolvedMedication

__all__ = ["dose_issues"]


def dose_issues(
    med: ResolvedMedication,
    kb: KnowledgeBase,
    context: PatientContext | None,
    policy: Policy,
    namer: IngredientNamer,
) -> tuple[list[Issue], DoseCheck]:
    """The dose of a proposed medication against the dose limits of its ingredients."""
    candidates = [
        limit
        for x in med.ingredients
        for limit in kb.ingredient_dose_limits.get(x, ())
        if route_ok(limit.routes, med.route)
    ]
    if not candidates:  # the common case: no limit, nothing parsed
        return [], "no-limit"
    given_as = administration_of(med.products)
    limits = [
        limit
        for limit in candidates
        if limit.administration is None or given_as in (None, limit.administration)
    ]
    if not limits:
        return [], "no-limit"
    dosage = med.item.dosage
    if dosage is None:
        return [], "no-dosage"
    weight = context.weight_kg if context is not None else None
    findings = [
        evaluate(limit, dosage, med.products, len(med.ingredients) == 1, weight) for limit in limits
    ]
    issues = [dose_issue(med, f, policy, namer) for f in findings if f.flags or f.not_checked]
    if any(f.flags for f in findings):
        return issues, "flagged"
    return issues, "not-checked" if issues else "within-limits"


def dose_issue(
    med: ResolvedMedication, finding: DoseFinding, policy: Policy, namer: IngredientNamer
) -> Issue:
    limit = finding.limit
    item = med_item(med, (limit.ingredient.rxcui,), namer)
    name = limit.ingredient.name
    if finding.not_checked is not None:
        _, severity, display = BUILTIN_RULE_OUTCOMES[RULE_DOSE_NOT_CHECKED]
        return Issue(
            category=IssueCategory.DOSE_RANGE,
            rule_id=RULE_DOSE_NOT_CHECKED,
            severity=severity,
            display=policy.display_for(RULE_DOSE_NOT_CHECKED, severity, display),
            kb_display=display,
            title=f"Dose of {med.item.label} not checked against the {name} limits",
            implicated=(item,),
            mechanism=None,
            consequence=f"Unable to check the dose: {finding.not_checked}.",
            management=(
                f"Check the dose against the adult limits for {name} ({limit.id}): "
                f"{limit.indication_note}"
            ),
            citations=limit.citations,
        )
    direction = "too low" if finding.low else "too high"
    return Issue(
        category=IssueCategory.DOSE_RANGE,
        rule_id=limit.id,
        severity=limit.severity,
        display=policy.display_for(limit.id, limit.severity, limit.display),
        kb_display=limit.display,
        title=f"Dose {direction}: {med.item.label} ({'; '.join(finding.flags)})",
        implicated=(item,),
        mechanism=None,
        consequence=f"{'; '.join(finding.flags).capitalize()}. {limit.rationale}",
        management=f"{limit.management} Limits: {limit.indication_note}",
        citations=limit.citations,
    )
