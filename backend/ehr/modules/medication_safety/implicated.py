"""What an issue implicates: the ingredient names it shows and the medication items it names,
shared by every kind of check (:mod:`.engine`, :mod:`.dose_checks`, :mod:`.coverage`)."""

from __future__ import annotations

from collections.abc import Iterable

from ehr.modules.medication_safety.issues import ImplicatedItem, MatchedIngredient
from ehr.modules.medication_safety.knowledge import (
    RXNORM_SYSTEM,
    CodeResolver,
    KnowledgeBase,
    RouteCategory,
)
from ehr.modules.medication_safety.resolution import ResolvedMedication

__all__ = ["IngredientNamer", "med_item", "route_ok"]


class IngredientNamer:
    """Ingredient names: the KB's, else the resolver's concept name, else the RxCUI."""

    __slots__ = ("_kb", "_resolver")

    def __init__(self, kb: KnowledgeBase, resolver: CodeResolver) -> None:
        self._kb = kb
        self._resolver = resolver

    def __call__(self, rxcui: str) -> MatchedIngredient:
        name = self._kb.ingredients.get(rxcui)
        if name is None:
            resolution = self._resolver.resolve(RXNORM_SYSTEM, rxcui)
            name = resolution.name if resolution is not None else f"RxCUI {rxcui}"
        return MatchedIngredient(rxcui, name)


def route_ok(allowed: frozenset[RouteCategory] | None, route: RouteCategory | None) -> bool:
    return allowed is None or route is None or route in allowed


def med_item(
    med: ResolvedMedication,
    ingredients: Iterable[str],
    namer: IngredientNamer,
    class_id: str | None = None,
    class_label: str | None = None,
) -> ImplicatedItem:
    return ImplicatedItem(
        "medication",
        med.role,
        med.item.id,
        med.item.label,
        med.item.reference,
        tuple(namer(x) for x in ingredients),
        class_id,
        class_label,
    )
