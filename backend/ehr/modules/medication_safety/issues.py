"""What the engine is given and what it answers (:func:`~.engine.check`).

Inputs: :class:`MedicationInput` (proposed or active), :class:`AllergyInput`,
:class:`PatientContext`; the tenant's display :class:`Policy`. Answer: a :class:`CheckResult` of
:class:`Issue` s (each with its :class:`ImplicatedItem` s), the codes that did not resolve, the
items with nothing checkable and the cross-sensitivities the knowledge base rules out.

Policy (display only; severity is the KB's and is never changed)
``Policy(interruptive=..., rule_display=...)``. The KB is authored to the default convention
contraindicated + major → interruptive, moderate → passive, minor → informational, with deliberate
exceptions (a passive major rule, a member override). An issue's display is, first match wins:

1. ``policy.rule_display[rule_id]`` — a tenant's per-rule choice;
2. if the severity's membership in ``policy.interruptive`` differs from the default
   (``DEFAULT_INTERRUPTIVE`` = contraindicated, major): promoted (now in the set) →
   ``interruptive``; demoted (now out of the set) → ``passive`` when the KB display was
   interruptive, else the KB display;
3. the KB display (the rule's, or its member override's).

So ``Policy()`` changes nothing, ``Policy(interruptive={contraindicated})`` makes every major
issue non-interruptive, ``Policy(interruptive={contraindicated, major, moderate})`` makes
moderate issues interruptive too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final, Literal

from ehr.modules.medication_safety.knowledge import (
    RULE_ALLERGY_SAME_GROUP,
    RULE_ALLERGY_SAME_INGREDIENT,
    RULE_DOSE_NOT_CHECKED,
    RULE_DUPLICATE_INGREDIENT,
    RULE_UNABLE_TO_CHECK,
    CitationRef,
    Display,
    RouteCategory,
    Severity,
)

__all__ = [
    "BUILTIN_RULE_OUTCOMES",
    "DEFAULT_INTERRUPTIVE",
    "DEFAULT_POLICY",
    "SNOMED_SYSTEM",
    "AllergyInput",
    "CheckResult",
    "ClearedCheck",
    "Coding",
    "Criticality",
    "Dosage",
    "DoseCheck",
    "DoseQuantity",
    "ImplicatedItem",
    "Issue",
    "IssueCategory",
    "ItemState",
    "ItemStatus",
    "MatchedIngredient",
    "MedicationInput",
    "PatientContext",
    "Policy",
    "Role",
    "UncheckedItem",
    "UnresolvedCode",
]

SNOMED_SYSTEM: Final = "http://snomed.info/sct"
DEFAULT_INTERRUPTIVE: Final = frozenset({Severity.CONTRAINDICATED, Severity.MAJOR})

Criticality = Literal["low", "high", "unable-to-assess"]
Role = Literal["proposed", "active", "allergy"]


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class Coding:
    system: str
    code: str
    display: str | None = None


@dataclass(frozen=True, slots=True)
class DoseQuantity:
    """An amount with its UCUM code as written (``mg``, ``ug``, ``meq``, ``[iU]``, ``mL``,
    ``{tbl}`` …)."""

    value: float
    unit: str


@dataclass(frozen=True, slots=True)
class Dosage:
    """A structured dose: the amount per administration and how many administrations a day
    (``None`` when the timing does not say); ``max_per_day`` from a PRN's maximum dose per
    period, normalised to one day."""

    dose: DoseQuantity | None
    per_day: float | None = None
    as_needed: bool = False
    max_per_day: DoseQuantity | None = None


@dataclass(frozen=True, slots=True)
class MedicationInput:
    """One medication. ``id`` is the caller's key (echoed in issues); ``reference`` the FHIR
    reference (``MedicationRequest/123``) when the item exists as a resource; ``route`` overrides
    the route parsed from the code's dose form; ``dosage`` (a proposed order's) is checked
    against the knowledge base's dose limits."""

    id: str
    label: str
    codings: tuple[Coding, ...] = ()
    text: str | None = None
    route: RouteCategory | None = None
    reference: str | None = None
    dosage: Dosage | None = None


@dataclass(frozen=True, slots=True)
class AllergyInput:
    """One allergy/intolerance (the caller has already filtered by clinical/verification status).

    Codings: RxNorm/NDC (an ingredient or product) or a SNOMED CT substance listed on an allergen
    group."""

    id: str
    label: str
    codings: tuple[Coding, ...] = ()
    text: str | None = None
    criticality: Criticality | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class PatientContext:
    age_years: int | None = None
    sex: Literal["female", "male", "other", "unknown"] | None = None
    weight_kg: float | None = None  # the latest body weight (per-kg dose limits)


@dataclass(frozen=True, slots=True)
class Policy:
    """A tenant's display policy (the exact rule: this module's docstring)."""

    interruptive: frozenset[Severity] = DEFAULT_INTERRUPTIVE
    rule_display: Mapping[str, Display] = field(default_factory=lambda: MappingProxyType({}))

    def display_for(self, rule_id: str, severity: Severity, kb_display: Display) -> Display:
        chosen = self.rule_display.get(rule_id)
        if chosen is not None:
            return chosen
        interrupts = severity in self.interruptive
        if interrupts == (severity in DEFAULT_INTERRUPTIVE):
            return kb_display
        if interrupts:
            return Display.INTERRUPTIVE
        return Display.PASSIVE if kb_display is Display.INTERRUPTIVE else kb_display


DEFAULT_POLICY: Final = Policy()


# --------------------------------------------------------------------------- outputs


class IssueCategory(StrEnum):
    DRUG_DRUG = "drug-drug"
    DRUG_ALLERGY = "drug-allergy"
    DUPLICATE_THERAPY = "duplicate-therapy"
    DOSE_RANGE = "dose-range"
    # A proposed medication that could not be screened (no code resolved, or free text only).
    UNABLE_TO_CHECK = "unable-to-check"


# The engine's own rules (not in the sources): category, severity and KB display of their issues.
BUILTIN_RULE_OUTCOMES: Final[Mapping[str, tuple[IssueCategory, Severity, Display]]] = (
    MappingProxyType(
        {
            RULE_ALLERGY_SAME_INGREDIENT: (
                IssueCategory.DRUG_ALLERGY,
                Severity.CONTRAINDICATED,
                Display.INTERRUPTIVE,
            ),
            RULE_ALLERGY_SAME_GROUP: (
                IssueCategory.DRUG_ALLERGY,
                Severity.MAJOR,
                Display.INTERRUPTIVE,
            ),
            RULE_DUPLICATE_INGREDIENT: (
                IssueCategory.DUPLICATE_THERAPY,
                Severity.MAJOR,
                Display.INTERRUPTIVE,
            ),
            # Passive (a warning, not a block): a tenant that wants unscreened orders to
            # interrupt sets the rule's display in its policy.
            RULE_UNABLE_TO_CHECK: (
                IssueCategory.UNABLE_TO_CHECK,
                Severity.MODERATE,
                Display.PASSIVE,
            ),
            RULE_DOSE_NOT_CHECKED: (
                IssueCategory.DOSE_RANGE,
                Severity.MINOR,
                Display.INFORMATIONAL,
            ),
        }
    )
)


@dataclass(frozen=True, slots=True)
class MatchedIngredient:
    rxcui: str
    name: str


@dataclass(frozen=True, slots=True)
class ImplicatedItem:
    """A medication or allergy an issue is about, with what matched in it."""

    kind: Literal["medication", "allergy"]
    role: Role
    id: str
    label: str
    reference: str | None
    ingredients: tuple[MatchedIngredient, ...]
    class_id: str | None = None  # the class / allergen group / duplicate class that matched
    class_label: str | None = None


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding. ``implicated[0]`` is a proposed medication; for drug-allergy the allergy is
    ``implicated[1]``; a duplicate class may implicate more than two medications."""

    category: IssueCategory
    rule_id: str
    severity: Severity
    display: Display  # after the policy
    kb_display: Display  # the knowledge base's (rule or member override)
    title: str
    implicated: tuple[ImplicatedItem, ...]
    mechanism: str | None
    consequence: str | None
    management: str
    citations: tuple[CitationRef, ...]
    source_list: str | None = None
    note: str | None = None  # a member override's note


@dataclass(frozen=True, slots=True)
class UnresolvedCode:
    item_id: str
    kind: Literal["medication", "allergy"]
    system: str
    code: str
    display: str | None
    reason: Literal["unknown-code", "unsupported-system"]


@dataclass(frozen=True, slots=True)
class UncheckedItem:
    item_id: str
    kind: Literal["medication", "allergy"]
    label: str
    reason: Literal["free-text-only", "no-code-resolved", "no-code"]


@dataclass(frozen=True, slots=True)
class ClearedCheck:
    """A cross-sensitivity the KB rules out (level ``none``) for this allergy and medication."""

    rule_id: str
    medication_id: str
    allergy_id: str
    rationale: str
    citations: tuple[CitationRef, ...]


ItemState = Literal["checked", "unresolved", "not_checkable"]
# A proposed medication's dose against the KB's limits: within them, flagged (an issue), not
# checked (a dose was given but cannot be compared: unit, strength or weight unknown), no dose
# given, or no limit for its ingredients.
DoseCheck = Literal["within-limits", "flagged", "not-checked", "no-dosage", "no-limit"]


@dataclass(frozen=True, slots=True)
class ItemStatus:
    """What the check did with one input item: ``checked`` (screened as the ingredients it
    resolved to, against ``CheckResult.kb_version``; ``without_rules`` lists those of them no
    knowledge-base rule names, so "nothing found" is read right), ``unresolved`` (it had codes,
    none of them known) or ``not_checkable`` (free text only, or no code at all)."""

    item_id: str
    kind: Literal["medication", "allergy"]
    role: Role
    label: str
    status: ItemState
    ingredients: tuple[MatchedIngredient, ...] = ()
    without_rules: tuple[str, ...] = ()
    dose: DoseCheck | None = None  # proposed medications only


@dataclass(frozen=True, slots=True)
class CheckResult:
    issues: tuple[Issue, ...]
    unresolved: tuple[UnresolvedCode, ...]
    not_checkable: tuple[UncheckedItem, ...]
    cleared: tuple[ClearedCheck, ...]
    kb_version: str
    items: tuple[ItemStatus, ...] = ()

    @property
    def interruptive(self) -> bool:
        return any(issue.display is Display.INTERRUPTIVE for issue in self.issues)
