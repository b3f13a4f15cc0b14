"""The compiled knowledge base: the immutable runtime index the engine reads.

Plain frozen dataclasses and dicts (no pydantic on the hot path), built by
:func:`~.compiler.compile_knowledge` from the sources (:mod:`.sources`). Also the ranks the
engine and the compiler order by, and the rule ids of the engine's own rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ehr.modules.medication_safety.knowledge.sources import (
    CrossSensitivityLevel,
    Display,
    RouteCategory,
    Severity,
)

__all__ = [
    "BUILTIN_RULE_IDS",
    "DISPLAY_RANK",
    "LEVEL_RANK",
    "RULE_ALLERGY_SAME_GROUP",
    "RULE_ALLERGY_SAME_INGREDIENT",
    "RULE_DOSE_NOT_CHECKED",
    "RULE_DUPLICATE_INGREDIENT",
    "RULE_UNABLE_TO_CHECK",
    "SEVERITY_RANK",
    "CitationRef",
    "CompiledAllergenGroup",
    "CompiledClass",
    "CompiledCrossSensitivity",
    "CompiledDoseLimit",
    "CompiledDuplicateClass",
    "CompiledInteraction",
    "CompiledOverride",
    "CompiledSide",
    "Ingredient",
    "KnowledgeBase",
    "Membership",
    "NearMissPair",
    "PairHit",
    "SourceFile",
    "duplicate_rule_id",
]

# The engine's own rules (not in the sources); reserved so a source rule cannot take their ids.
RULE_ALLERGY_SAME_INGREDIENT: Final = "ALG-SAME-INGREDIENT"
RULE_ALLERGY_SAME_GROUP: Final = "ALG-SAME-GROUP"
RULE_DUPLICATE_INGREDIENT: Final = "DUP-SAME-INGREDIENT"
# A proposed medication none of whose codes resolved: it was not screened at all.
RULE_UNABLE_TO_CHECK: Final = "MS-UNABLE-TO-CHECK"
# A proposed dose of a drug with dose limits that cannot be compared with them (unit, strength,
# timing or weight unknown).
RULE_DOSE_NOT_CHECKED: Final = "MS-DOSE-NOT-CHECKED"
BUILTIN_RULE_IDS: Final = frozenset(
    {
        RULE_ALLERGY_SAME_INGREDIENT,
        RULE_ALLERGY_SAME_GROUP,
        RULE_DUPLICATE_INGREDIENT,
        RULE_UNABLE_TO_CHECK,
        RULE_DOSE_NOT_CHECKED,
    }
)

# Lower = more severe / more intrusive / stronger.
SEVERITY_RANK: Final[Mapping[Severity, int]] = {
    Severity.CONTRAINDICATED: 0,
    Severity.MAJOR: 1,
    Severity.MODERATE: 2,
    Severity.MINOR: 3,
}
DISPLAY_RANK: Final[Mapping[Display, int]] = {
    Display.INTERRUPTIVE: 0,
    Display.PASSIVE: 1,
    Display.INFORMATIONAL: 2,
}
LEVEL_RANK: Final[Mapping[CrossSensitivityLevel, int]] = {
    CrossSensitivityLevel.ALERT: 0,
    CrossSensitivityLevel.INFO: 1,
    CrossSensitivityLevel.NONE: 2,
}


# --------------------------------------------------------------------------- runtime form


@dataclass(frozen=True, slots=True)
class CitationRef:
    id: str
    text: str
    url: str | None


@dataclass(frozen=True, slots=True)
class Ingredient:
    rxcui: str
    name: str


@dataclass(frozen=True, slots=True)
class SourceFile:
    name: str
    sha256: str


@dataclass(frozen=True, slots=True)
class CompiledClass:
    id: str
    label: str
    members: tuple[Ingredient, ...]
    citations: tuple[CitationRef, ...]


@dataclass(frozen=True, slots=True)
class CompiledSide:
    """One side of an interaction rule: a class or a single ingredient."""

    label: str
    class_id: str | None
    members: tuple[Ingredient, ...]  # source order (a class's members, or the one ingredient)
    member_ids: frozenset[str]
    routes: frozenset[RouteCategory] | None  # None = any route


@dataclass(frozen=True, slots=True)
class CompiledOverride:
    rxcui: str
    severity: Severity
    display: Display
    note: str


@dataclass(frozen=True, slots=True)
class NearMissPair:
    a: str
    b: str
    why: str


@dataclass(frozen=True, slots=True)
class CompiledInteraction:
    id: str
    a: CompiledSide
    b: CompiledSide
    severity: Severity
    display: Display
    mechanism: str
    consequence: str
    management: str
    citations: tuple[CitationRef, ...]
    source_list: str
    overrides: tuple[CompiledOverride, ...]
    near_misses: tuple[NearMissPair, ...]

    def override_for(self, rxcui: str) -> CompiledOverride | None:
        for override in self.overrides:
            if override.rxcui == rxcui:
                return override
        return None


@dataclass(frozen=True, slots=True)
class PairHit:
    """Rule ``rule`` for the key ``(first, second)`` of :attr:`KnowledgeBase.pair_index`.

    ``first_side`` is the rule side the key's first ingredient is on; ``first_routes`` /
    ``second_routes`` are the route qualifiers of the medications carrying the first / second
    ingredient. ``severity``/``display`` already include the member override (``override``).
    """

    rule: CompiledInteraction
    first_side: Literal["a", "b"]
    first_routes: frozenset[RouteCategory] | None
    second_routes: frozenset[RouteCategory] | None
    severity: Severity
    display: Display
    override: CompiledOverride | None


@dataclass(frozen=True, slots=True)
class Membership:
    rule_id: str
    side: Literal["a", "b"]


@dataclass(frozen=True, slots=True)
class CompiledAllergenGroup:
    id: str
    label: str
    members: tuple[Ingredient, ...]
    member_ids: frozenset[str]
    snomed_codes: tuple[str, ...]
    citations: tuple[CitationRef, ...]


@dataclass(frozen=True, slots=True)
class CompiledCrossSensitivity:
    id: str
    from_group: str
    from_label: str
    to_group: str | None
    target_label: str
    targets: tuple[Ingredient, ...]
    target_ids: frozenset[str]
    level: CrossSensitivityLevel
    rationale: str
    management: str
    citations: tuple[CitationRef, ...]


@dataclass(frozen=True, slots=True)
class CompiledDuplicateClass:
    id: str
    rule_id: str
    label: str
    members: tuple[Ingredient, ...]
    member_ids: frozenset[str]
    members_of: str | None
    allowance: int
    severity: Severity
    display: Display
    management: str
    citations: tuple[CitationRef, ...]
    routes: frozenset[RouteCategory] | None


@dataclass(frozen=True, slots=True)
class CompiledDoseLimit:
    """Adult dose limits of one ingredient (see ``sources.DoseLimit``)."""

    id: str
    ingredient: Ingredient
    routes: frozenset[RouteCategory] | None
    administration: str | None  # "oral" | "parenteral" | None (any)
    unit: str  # a UCUM code of an amount: g, mg, ug, [iU], meq, mmol
    per_kg: bool
    max_single: float | None
    max_daily: float | None
    max_weekly: float | None
    max_administrations_per_week: int | None
    min_daily: float | None
    indication_note: str
    severity: Severity
    display: Display
    rationale: str
    management: str
    citations: tuple[CitationRef, ...]


@dataclass(frozen=True, slots=True, eq=False)
class KnowledgeBase:
    """The compiled knowledge base. Treat every mapping as read-only."""

    version: str
    release: str
    content_hash: str
    sources: tuple[SourceFile, ...]
    citations: Mapping[str, CitationRef]
    ingredients: Mapping[str, str]  # rxcui -> name, every ingredient the sources name
    classes: Mapping[str, CompiledClass]
    interactions: Mapping[str, CompiledInteraction]
    memberships: Mapping[str, tuple[Membership, ...]]
    pair_index: Mapping[tuple[str, str], tuple[PairHit, ...]]
    allergen_groups: Mapping[str, CompiledAllergenGroup]
    ingredient_allergen_groups: Mapping[str, tuple[str, ...]]
    snomed_allergen_groups: Mapping[str, tuple[str, ...]]
    cross_sensitivities: Mapping[str, CompiledCrossSensitivity]
    # (allergen group of the allergy, ingredient of the drug) -> strongest first, then by id
    cross_sensitivity_index: Mapping[tuple[str, str], tuple[CompiledCrossSensitivity, ...]]
    duplicate_classes: Mapping[str, CompiledDuplicateClass]
    ingredient_duplicate_classes: Mapping[str, tuple[CompiledDuplicateClass, ...]]
    dose_limits: Mapping[str, CompiledDoseLimit] = field(default_factory=dict)
    ingredient_dose_limits: Mapping[str, tuple[CompiledDoseLimit, ...]] = field(
        default_factory=dict
    )

    def provenance(self) -> dict[str, Any]:
        """JSON-ready: version, source files with hashes, rule counts, citations."""
        return {
            "version": self.version,
            "release": self.release,
            "content_hash": self.content_hash,
            "sources": [{"file": s.name, "sha256": s.sha256} for s in self.sources],
            "counts": {
                "interactions": len(self.interactions),
                "classes": len(self.classes),
                "allergen_groups": len(self.allergen_groups),
                "cross_sensitivities": len(self.cross_sensitivities),
                "duplicate_classes": len(self.duplicate_classes),
                "dose_limits": len(self.dose_limits),
                "ingredients": len(self.ingredients),
            },
            "citations": [
                {"id": c.id, "text": c.text, "url": c.url} for c in self.citations.values()
            ],
        }


def duplicate_rule_id(duplicate_class_id: str) -> str:
    """``ehr:dup/ace-inhibitors`` → ``DUP-ACE-INHIBITORS`` (the rule id its issues carry)."""
    return "DUP-" + duplicate_class_id.split("/", 1)[1].upper()
