"""The in-process medication-safety check: proposed medications against a patient's profile.

``check(proposed, active, allergies, context, *, kb, resolver, policy) -> CheckResult``

Inputs (:mod:`.issues`) are small frozen dataclasses the service builds from FHIR
(MedicationRequest / MedicationStatement → :class:`MedicationInput`, AllergyIntolerance →
:class:`AllergyInput`; the caller filters allergies by clinical/verification status and leaves out
of ``active`` the order a proposed one replaces). Every coding is resolved to RxNorm ingredients by
``resolver`` (:mod:`.resolution`); codings that do not resolve are listed in
:attr:`CheckResult.unresolved`, items with nothing checkable in :attr:`CheckResult.not_checkable` —
nothing is silently ignored.

What is checked
- **drug-drug**: each proposed medication against each active one and against every other
  proposed one; one issue per (pair of medications, rule), from the compiled pair index. Two
  ingredients of one product never interact with each other, and the same ingredient on both
  sides is duplicate therapy, not an interaction — unless the rule's sides are for disjoint
  routes (timolol eye drops with oral timolol). When several ingredient pairs of two
  (combination) products hit the same rule, the most severe hit (after member overrides) is
  reported. Route qualifiers: a side with ``routes`` only matches a medication whose route is one
  of them; a medication whose route is unknown matches (conservative).
- **drug-allergy** (each proposed medication against each allergy; the one strongest finding per
  pair is reported): same ingredient (``ALG-SAME-INGREDIENT``: contraindicated, interruptive) >
  same allergen group (``ALG-SAME-GROUP``: major, interruptive; an allergy coded as a SNOMED CT
  substance listed on a group counts as an allergy to the group) > cross-sensitivity at level
  ``alert`` (major, interruptive) > level ``info`` (minor, informational). Level ``none`` raises
  no issue; it is recorded in :attr:`CheckResult.cleared` (the KB's explicit "not cross-reactive",
  e.g. sulfonamide antibiotics → furosemide) so a UI can say it was considered.
- **duplicate therapy**: the same ingredient in two medications (including inside combination
  products, whatever code each carries) when their routes are the same or either is unknown
  (``DUP-SAME-INGREDIENT``: major, interruptive; topical and oral hydrocortisone are not
  duplicates); and each duplicate class whose distinct member ingredients across all medications
  exceed ``1 + allowance`` when a proposed medication contributes a member (one issue per class;
  rule id ``DUP-<SLUG>``; severity/display from the class; the class's ``routes`` filter members).

Policy (display only; severity is the KB's and is never changed): :class:`~.issues.Policy`.

Also: each proposed medication's dose against the dose limits (:mod:`.dose_checks`), and what was
done with each item plus the "unable to check" issue of an unscreened proposal (:mod:`.coverage`).

Order of issues: severity (contraindicated first), rule id, then the implicated item ids.
``context`` (age, sex) is accepted for context-aware rules; no rule uses it yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from ehr.modules.medication_safety.coverage import item_statuses, unable_to_check
from ehr.modules.medication_safety.dose_checks import dose_issues
from ehr.modules.medication_safety.implicated import IngredientNamer, med_item, route_ok
from ehr.modules.medication_safety.issues import (
    BUILTIN_RULE_OUTCOMES,
    DEFAULT_POLICY,
    AllergyInput,
    CheckResult,
    ClearedCheck,
    DoseCheck,
    ImplicatedItem,
    Issue,
    IssueCategory,
    MedicationInput,
    PatientContext,
    Policy,
    UncheckedItem,
    UnresolvedCode,
)
from ehr.modules.medication_safety.knowledge import (
    LEVEL_RANK,
    RULE_ALLERGY_SAME_GROUP,
    RULE_ALLERGY_SAME_INGREDIENT,
    RULE_DUPLICATE_INGREDIENT,
    SEVERITY_RANK,
    CodeResolver,
    CompiledCrossSensitivity,
    CompiledDuplicateClass,
    CrossSensitivityLevel,
    Display,
    KnowledgeBase,
    PairHit,
    RouteCategory,
    Severity,
)
from ehr.modules.medication_safety.resolution import (
    ResolvedAllergy,
    ResolvedMedication,
    resolve_allergy,
    resolve_medication,
)

__all__ = ["CROSS_SENSITIVITY_OUTCOMES", "check"]

# --------------------------------------------------------------------------- checks


def _could_be_systemic(
    hit: PairHit, p_route: RouteCategory | None, q_route: RouteCategory | None
) -> bool:
    """Whether the hit reads each medication of unknown route as systemic."""
    for routes, route in ((hit.first_routes, p_route), (hit.second_routes, q_route)):
        if route is None and routes is not None and RouteCategory.SYSTEMIC not in routes:
            return False
    return True


def _interactions(
    p: ResolvedMedication,
    q: ResolvedMedication,
    kb: KnowledgeBase,
    policy: Policy,
    namer: IngredientNamer,
) -> Iterable[Issue]:
    best: dict[str, tuple[PairHit, str, str]] = {}
    pair_index = kb.pair_index
    for x in p.ingredients:
        for y in q.ingredients:
            hits = pair_index.get((x, y))
            if hits is None:
                continue
            matching = [
                hit
                for hit in hits
                if route_ok(hit.first_routes, p.route) and route_ok(hit.second_routes, q.route)
            ]
            # A medication whose route is unknown matches every route (conservative); when a
            # systemic rule matches it, its local-route counterparts for the same pair do not
            # add a second, weaker issue.
            if p.route is None or q.route is None:
                systemic = [h for h in matching if _could_be_systemic(h, p.route, q.route)]
                matching = systemic or matching
            for hit in matching:
                current = best.get(hit.rule.id)
                if (
                    current is None
                    or SEVERITY_RANK[hit.severity] < SEVERITY_RANK[current[0].severity]
                ):
                    best[hit.rule.id] = (hit, x, y)
    for hit, x, y in best.values():
        rule = hit.rule
        p_side, q_side = (rule.a, rule.b) if hit.first_side == "a" else (rule.b, rule.a)
        p_item = med_item(p, (x,), namer, p_side.class_id, p_side.label)
        q_item = med_item(q, (y,), namer, q_side.class_id, q_side.label)
        yield Issue(
            category=IssueCategory.DRUG_DRUG,
            rule_id=rule.id,
            severity=hit.severity,
            display=policy.display_for(rule.id, hit.severity, hit.display),
            kb_display=hit.display,
            title=(
                f"Interaction: {p_item.ingredients[0].name} + {q_item.ingredients[0].name}"
                f" ({rule.a.label} + {rule.b.label})"
            ),
            implicated=(p_item, q_item),
            mechanism=rule.mechanism,
            consequence=rule.consequence,
            management=rule.management,
            citations=rule.citations,
            source_list=rule.source_list,
            note=None if hit.override is None else hit.override.note,
        )


def _same_ingredient(
    p: ResolvedMedication, q: ResolvedMedication, policy: Policy, namer: IngredientNamer
) -> Issue | None:
    if p.route is not None and q.route is not None and p.route != q.route:
        return None
    shared = sorted(set(p.ingredients) & set(q.ingredients))
    if not shared:
        return None
    names = ", ".join(namer(x).name for x in shared)
    _, severity, display = BUILTIN_RULE_OUTCOMES[RULE_DUPLICATE_INGREDIENT]
    return Issue(
        category=IssueCategory.DUPLICATE_THERAPY,
        rule_id=RULE_DUPLICATE_INGREDIENT,
        severity=severity,
        display=policy.display_for(RULE_DUPLICATE_INGREDIENT, severity, display),
        kb_display=display,
        title=f"Duplicate ingredient: {names} ({p.item.label}; {q.item.label})",
        implicated=(med_item(p, shared, namer), med_item(q, shared, namer)),
        mechanism=None,
        consequence=f"The patient would receive {names} from two medications (overdose risk).",
        management=(
            "Confirm both are intended; otherwise stop one or account for the combined dose "
            "(combination products included)."
        ),
        citations=(),
    )


def _duplicate_classes(
    meds: Sequence[ResolvedMedication], kb: KnowledgeBase, policy: Policy, namer: IngredientNamer
) -> Iterable[Issue]:
    index = kb.ingredient_duplicate_classes
    relevant: dict[str, CompiledDuplicateClass] = {}
    for med in meds:
        if med.role != "proposed":
            continue
        for x in med.ingredients:
            for dup in index.get(x, ()):
                if route_ok(dup.routes, med.route):
                    relevant[dup.id] = dup
    for dup_id in sorted(relevant):
        dup = relevant[dup_id]
        contributions: list[tuple[ResolvedMedication, list[str]]] = []
        distinct: set[str] = set()
        for med in meds:
            if not route_ok(dup.routes, med.route):
                continue
            members = [x for x in med.ingredients if x in dup.member_ids]
            if members:
                contributions.append((med, members))
                distinct.update(members)
        if len(distinct) <= 1 + dup.allowance or len(contributions) < 2:
            continue
        contributions.sort(key=lambda c: c[0].role != "proposed")  # stable: proposed first
        yield Issue(
            category=IssueCategory.DUPLICATE_THERAPY,
            rule_id=dup.rule_id,
            severity=dup.severity,
            display=policy.display_for(dup.rule_id, dup.severity, dup.display),
            kb_display=dup.display,
            title=f"Duplicate therapy: {len(distinct)} {dup.label}",
            implicated=tuple(
                med_item(med, members, namer, dup.id, dup.label) for med, members in contributions
            ),
            mechanism=None,
            consequence=(f"{len(distinct)} different {dup.label} (allowed: {1 + dup.allowance})."),
            management=dup.management,
            citations=dup.citations,
        )


# Severity and display of a cross-sensitivity issue by level (level ``none`` raises none).
CROSS_SENSITIVITY_OUTCOMES: Final[Mapping[CrossSensitivityLevel, tuple[Severity, Display]]] = {
    CrossSensitivityLevel.ALERT: (Severity.MAJOR, Display.INTERRUPTIVE),
    CrossSensitivityLevel.INFO: (Severity.MINOR, Display.INFORMATIONAL),
}


def _allergy_item(
    allergy: ResolvedAllergy,
    ingredients: Iterable[str],
    namer: IngredientNamer,
    class_id: str | None = None,
    class_label: str | None = None,
) -> ImplicatedItem:
    return ImplicatedItem(
        "allergy",
        "allergy",
        allergy.item.id,
        allergy.item.label,
        allergy.item.reference,
        tuple(namer(x) for x in sorted(ingredients)),
        class_id,
        class_label,
    )


def _allergy_issue(
    p: ResolvedMedication,
    allergy: ResolvedAllergy,
    kb: KnowledgeBase,
    policy: Policy,
    namer: IngredientNamer,
    cleared: list[ClearedCheck],
) -> Issue | None:
    shared = sorted(allergy.ingredients.intersection(p.ingredients))
    if shared:
        names = ", ".join(namer(x).name for x in shared)
        _, severity, display = BUILTIN_RULE_OUTCOMES[RULE_ALLERGY_SAME_INGREDIENT]
        groups = [
            kb.allergen_groups[g] for x in shared for g in kb.ingredient_allergen_groups.get(x, ())
        ]
        return Issue(
            category=IssueCategory.DRUG_ALLERGY,
            rule_id=RULE_ALLERGY_SAME_INGREDIENT,
            severity=severity,
            display=policy.display_for(RULE_ALLERGY_SAME_INGREDIENT, severity, display),
            kb_display=display,
            title=f"Allergy: {p.item.label} contains {names} ({allergy.item.label})",
            implicated=(med_item(p, shared, namer), _allergy_item(allergy, shared, namer)),
            mechanism=f"The medication contains {names}, which the patient is recorded as "
            "allergic or intolerant to.",
            consequence="Risk of a hypersensitivity or intolerance reaction.",
            management="Avoid unless the allergy record is refuted; choose an alternative.",
            citations=tuple(dict.fromkeys(c for g in groups for c in g.citations)),
        )
    if allergy.groups:
        allergy_groups = set(allergy.groups)
        for x in p.ingredients:
            for group_id in kb.ingredient_allergen_groups.get(x, ()):
                if group_id not in allergy_groups:
                    continue
                group = kb.allergen_groups[group_id]
                _, severity, display = BUILTIN_RULE_OUTCOMES[RULE_ALLERGY_SAME_GROUP]
                name = namer(x).name
                return Issue(
                    category=IssueCategory.DRUG_ALLERGY,
                    rule_id=RULE_ALLERGY_SAME_GROUP,
                    severity=severity,
                    display=policy.display_for(RULE_ALLERGY_SAME_GROUP, severity, display),
                    kb_display=display,
                    title=f"Allergy: {name} is in {group.label} ({allergy.item.label})",
                    implicated=(
                        med_item(p, (x,), namer, group.id, group.label),
                        _allergy_item(
                            allergy,
                            allergy.ingredients & group.member_ids,
                            namer,
                            group.id,
                            group.label,
                        ),
                    ),
                    mechanism=f"{name} belongs to the same allergen group ({group.label}) as the "
                    "recorded allergy.",
                    consequence="High risk of a hypersensitivity reaction.",
                    management="Avoid the group unless the allergy has been evaluated; choose "
                    "an alternative.",
                    citations=group.citations,
                )
        best: tuple[CompiledCrossSensitivity, str] | None = None
        index = kb.cross_sensitivity_index
        for group_id in allergy.groups:
            for x in p.ingredients:
                found = index.get((group_id, x))
                if found and (best is None or _cross_key(found[0]) < _cross_key(best[0])):
                    best = (found[0], x)
        if best is not None:
            cross, x = best
            outcome = CROSS_SENSITIVITY_OUTCOMES.get(cross.level)
            if outcome is None:
                cleared.append(
                    ClearedCheck(
                        cross.id, p.item.id, allergy.item.id, cross.rationale, cross.citations
                    )
                )
                return None
            severity, display = outcome
            name = namer(x).name
            from_group = kb.allergen_groups[cross.from_group]
            return Issue(
                category=IssueCategory.DRUG_ALLERGY,
                rule_id=cross.id,
                severity=severity,
                display=policy.display_for(cross.id, severity, display),
                kb_display=display,
                title=f"Cross-sensitivity: {name} with {from_group.label} ({allergy.item.label})",
                implicated=(
                    med_item(p, (x,), namer, cross.to_group, cross.target_label),
                    _allergy_item(
                        allergy,
                        allergy.ingredients & from_group.member_ids,
                        namer,
                        from_group.id,
                        from_group.label,
                    ),
                ),
                mechanism=cross.rationale,
                consequence=(
                    "Possible cross-reactive hypersensitivity reaction."
                    if cross.level is CrossSensitivityLevel.ALERT
                    else "Cross-reactivity is uncommon; noted for information."
                ),
                management=cross.management,
                citations=cross.citations,
            )
    return None


def _cross_key(cross: CompiledCrossSensitivity) -> tuple[int, str]:
    return (LEVEL_RANK[cross.level], cross.id)


def _sort_key(issue: Issue) -> tuple[int, str, tuple[str, ...]]:
    return (SEVERITY_RANK[issue.severity], issue.rule_id, tuple(i.id for i in issue.implicated))


def check(
    proposed: Sequence[MedicationInput],
    active: Sequence[MedicationInput],
    allergies: Sequence[AllergyInput],
    context: PatientContext | None = None,
    *,
    kb: KnowledgeBase,
    resolver: CodeResolver,
    policy: Policy = DEFAULT_POLICY,
) -> CheckResult:
    """Check ``proposed`` against ``active``, each other and ``allergies`` (see module doc)."""
    unresolved: list[UnresolvedCode] = []
    unchecked: list[UncheckedItem] = []
    cleared: list[ClearedCheck] = []
    namer = IngredientNamer(kb, resolver)

    new = [
        m
        for med in proposed
        if (m := resolve_medication(med, "proposed", resolver, unresolved, unchecked)) is not None
    ]
    current = [
        m
        for med in active
        if (m := resolve_medication(med, "active", resolver, unresolved, unchecked)) is not None
    ]
    known_allergies = [
        a
        for allergy in allergies
        if (a := resolve_allergy(allergy, kb, resolver, unresolved, unchecked)) is not None
    ]

    issues: list[Issue] = []
    for i, p in enumerate(new):
        for q in (*current, *new[i + 1 :]):
            issues.extend(_interactions(p, q, kb, policy, namer))
            duplicate = _same_ingredient(p, q, policy, namer)
            if duplicate is not None:
                issues.append(duplicate)
        for allergy in known_allergies:
            found = _allergy_issue(p, allergy, kb, policy, namer, cleared)
            if found is not None:
                issues.append(found)
    if new:
        issues.extend(_duplicate_classes([*new, *current], kb, policy, namer))
    dose_checks: dict[str, DoseCheck] = {}
    for p in new:
        dose_findings, dose_checks[p.item.id] = dose_issues(p, kb, context, policy, namer)
        issues.extend(dose_findings)
    statuses = item_statuses(
        [(proposed, "proposed", new), (active, "active", current)],
        allergies,
        known_allergies,
        unchecked,
        kb,
        namer,
        dose_checks,
    )
    issues.extend(unable_to_check(proposed, statuses, unresolved, policy))
    issues.sort(key=_sort_key)
    return CheckResult(
        issues=tuple(issues),
        unresolved=tuple(unresolved),
        not_checkable=tuple(unchecked),
        cleared=tuple(cleared),
        kb_version=kb.version,
        items=tuple(statuses),
    )
