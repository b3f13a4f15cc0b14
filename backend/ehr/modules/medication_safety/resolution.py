"""Resolving the inputs' codes to RxNorm ingredients (and allergen groups), before the checks.

Every coding is resolved by the :class:`~.knowledge.CodeResolver`; an allergy coded as a SNOMED CT
substance listed on an allergen group counts as an allergy to the group. Codings that do not
resolve are reported as :class:`~.issues.UnresolvedCode`, items left with nothing checkable as
:class:`~.issues.UncheckedItem` — nothing is silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from ehr.modules.medication_safety.issues import (
    SNOMED_SYSTEM,
    AllergyInput,
    Coding,
    MedicationInput,
    Role,
    UncheckedItem,
    UnresolvedCode,
)
from ehr.modules.medication_safety.knowledge import (
    NDC_SYSTEM,
    RXNORM_SYSTEM,
    CodeResolver,
    KnowledgeBase,
    Resolution,
    RouteCategory,
)

__all__ = ["ResolvedAllergy", "ResolvedMedication", "resolve_allergy", "resolve_medication"]


@dataclass(frozen=True, slots=True)
class ResolvedMedication:
    item: MedicationInput
    role: Role
    ingredients: tuple[str, ...]  # sorted, distinct
    route: RouteCategory | None
    products: tuple[Resolution, ...] = ()  # the concepts its codes resolved to


@dataclass(frozen=True, slots=True)
class ResolvedAllergy:
    item: AllergyInput
    ingredients: frozenset[str]
    groups: tuple[str, ...]  # sorted, distinct


_CHECKABLE_SYSTEMS: Final = frozenset({RXNORM_SYSTEM, NDC_SYSTEM})


def _unresolved(
    item_id: str, kind: Literal["medication", "allergy"], coding: Coding, system_known: bool
) -> UnresolvedCode:
    return UnresolvedCode(
        item_id,
        kind,
        coding.system,
        coding.code,
        coding.display,
        "unknown-code" if system_known else "unsupported-system",
    )


def _unchecked_reason(
    codings: tuple[Coding, ...], text: str | None
) -> Literal["free-text-only", "no-code-resolved", "no-code"]:
    if codings:
        return "no-code-resolved"
    return "free-text-only" if text else "no-code"


def resolve_medication(
    med: MedicationInput,
    role: Role,
    resolver: CodeResolver,
    unresolved: list[UnresolvedCode],
    unchecked: list[UncheckedItem],
) -> ResolvedMedication | None:
    ingredients: set[str] = set()
    products: list[Resolution] = []
    route = med.route
    for coding in med.codings:
        resolution = resolver.resolve(coding.system, coding.code)
        if resolution is None or not resolution.ingredients:
            unresolved.append(
                _unresolved(med.id, "medication", coding, coding.system in _CHECKABLE_SYSTEMS)
            )
            continue
        ingredients |= resolution.ingredients
        products.append(resolution)
        if route is None:
            route = resolution.route
    if not ingredients:
        unchecked.append(
            UncheckedItem(med.id, "medication", med.label, _unchecked_reason(med.codings, med.text))
        )
        return None
    return ResolvedMedication(med, role, tuple(sorted(ingredients)), route, tuple(products))


def resolve_allergy(
    allergy: AllergyInput,
    kb: KnowledgeBase,
    resolver: CodeResolver,
    unresolved: list[UnresolvedCode],
    unchecked: list[UncheckedItem],
) -> ResolvedAllergy | None:
    ingredients: set[str] = set()
    groups: set[str] = set()
    for coding in allergy.codings:
        if coding.system == SNOMED_SYSTEM and coding.code in kb.snomed_allergen_groups:
            groups.update(kb.snomed_allergen_groups[coding.code])
            continue
        resolution = resolver.resolve(coding.system, coding.code)
        if resolution is None or not resolution.ingredients:
            known = coding.system in _CHECKABLE_SYSTEMS or coding.system == SNOMED_SYSTEM
            unresolved.append(_unresolved(allergy.id, "allergy", coding, known))
            continue
        ingredients |= resolution.ingredients
    if not ingredients and not groups:
        unchecked.append(
            UncheckedItem(
                allergy.id,
                "allergy",
                allergy.label,
                _unchecked_reason(allergy.codings, allergy.text),
            )
        )
        return None
    for rxcui in ingredients:
        groups.update(kb.ingredient_allergen_groups.get(rxcui, ()))
    return ResolvedAllergy(allergy, frozenset(ingredients), tuple(sorted(groups)))
