"""The knowledge base's source schema: what a reviewer reads in ``data/sources/*.yaml``.

Every YAML file under ``data/sources/`` is one :class:`KnowledgeFile`; all sections are optional
and the compiler merges the files (ids are unique across files; the same ingredient RxCUI must carry
the same name everywhere; every referenced class / allergen group / citation must exist).

Identifiers
- Ingredients are RxNorm ingredient CUIs (TTY=IN) as strings, e.g. ``"11289"`` (warfarin).
- Our own classes are namespaced: ``ehr:class/<slug>`` (drug classes used by interaction and
  duplicate-therapy rules), ``ehr:allergen/<slug>`` (allergen groups), ``ehr:dup/<slug>``
  (duplicate-therapy classes). Rule ids are stable, upper-case: ``ONC-HP-03``, ``ONC-NI-12``,
  ``DDI-<SLUG>``, ``ALG-<SLUG>``, ``DUP-<SLUG>``.
- Citations are ids into a ``citations`` section (any file).

Membership is frozen: a class lists its members explicitly (no "all statins" wildcards), so a
published row that is narrower than the pharmacological class (simvastatin/lovastatin only, the
three triptans, MAO-A inhibitors) is written as its own narrower class.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "DEFAULT_DISPLAY",
    "AllergenGroup",
    "Citation",
    "CrossSensitivity",
    "CrossSensitivityLevel",
    "Display",
    "DoseLimit",
    "DoseUnit",
    "DrugClass",
    "DuplicateClass",
    "InteractionRule",
    "KnowledgeFile",
    "Member",
    "MemberOverride",
    "NearMiss",
    "RouteCategory",
    "RuleSide",
    "Severity",
]

RxCui = Annotated[str, Field(pattern=r"^[0-9]{1,8}$", description="RxNorm CUI (TTY=IN).")]
ClassId = Annotated[str, Field(pattern=r"^ehr:class/[a-z0-9][a-z0-9-]*$")]
AllergenGroupId = Annotated[str, Field(pattern=r"^ehr:allergen/[a-z0-9][a-z0-9-]*$")]
DuplicateClassId = Annotated[str, Field(pattern=r"^ehr:dup/[a-z0-9][a-z0-9-]*$")]
RuleId = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")]
CitationId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
Text = Annotated[str, Field(min_length=3, max_length=2000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Severity(StrEnum):
    """Ordered from most to least severe."""

    CONTRAINDICATED = "contraindicated"
    MAJOR = "major"
    MODERATE = "moderate"
    MINOR = "minor"


class Display(StrEnum):
    INTERRUPTIVE = "interruptive"
    PASSIVE = "passive"
    INFORMATIONAL = "informational"


# A rule's display follows its severity unless the rule says why not (``display_reason``); the
# tenant's policy still decides what interrupts (it never changes a severity).
DEFAULT_DISPLAY: Final[Mapping[Severity, Display]] = MappingProxyType(
    {
        Severity.CONTRAINDICATED: Display.INTERRUPTIVE,
        Severity.MAJOR: Display.INTERRUPTIVE,
        Severity.MODERATE: Display.PASSIVE,
        Severity.MINOR: Display.INFORMATIONAL,
    }
)


class RouteCategory(StrEnum):
    """Where a medication acts. ``systemic`` includes oral, parenteral, transdermal, sublingual."""

    SYSTEMIC = "systemic"
    TOPICAL = "topical"
    OPHTHALMIC = "ophthalmic"
    OTIC = "otic"
    NASAL = "nasal"
    INHALED = "inhaled"
    VAGINAL = "vaginal"
    RECTAL_LOCAL = "rectal-local"


class CrossSensitivityLevel(StrEnum):
    ALERT = "alert"
    INFO = "info"
    NONE = "none"


class Citation(_Strict):
    id: CitationId
    text: Text = Field(description="Full reference (authors, title, journal/label, year).")
    url: str | None = Field(default=None, pattern=r"^https://")


class Member(_Strict):
    rxcui: RxCui
    name: str = Field(min_length=2, max_length=120, pattern=r"^[a-z0-9][a-z0-9 ,.'()/-]*$")


class DrugClass(_Strict):
    id: ClassId
    label: str = Field(min_length=3, max_length=200)
    description: str | None = None
    members: tuple[Member, ...] = Field(min_length=1)
    citations: tuple[CitationId, ...] = Field(min_length=1)


class RuleSide(_Strict):
    """One side of an interaction: exactly one of ``ingredient`` or ``class_id``."""

    ingredient: Member | None = None
    class_id: ClassId | None = Field(default=None, alias="class")
    # Only medications whose route category is listed trigger this side; None = any route.
    # A medication whose route is unknown is treated as matching (conservative).
    routes: tuple[RouteCategory, ...] | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _exactly_one(self) -> RuleSide:
        if (self.ingredient is None) == (self.class_id is None):
            raise ValueError("a rule side names exactly one of 'ingredient' or 'class'")
        return self


class MemberOverride(_Strict):
    """A member of either side for which the rule is weaker/stronger than the row's default."""

    rxcui: RxCui
    severity: Severity
    display: Display
    note: Text


class NearMiss(_Strict):
    """A curated pair that must NOT fire this rule (e.g. atorvastatin for the simvastatin row)."""

    a: RxCui
    b: RxCui
    why: Text


class InteractionRule(_Strict):
    id: RuleId
    a: RuleSide = Field(description="Object drug (the one whose effect changes), when known.")
    b: RuleSide = Field(description="Precipitant drug.")
    severity: Severity
    display: Display
    mechanism: Text
    consequence: Text = Field(description="Clinical consequence, our own words.")
    management: Text = Field(description="What to do, our own words.")
    citations: tuple[CitationId, ...] = Field(min_length=1)
    member_overrides: tuple[MemberOverride, ...] = ()
    near_misses: tuple[NearMiss, ...] = ()
    source_list: Literal["onc-high-priority", "onc-non-interruptive", "fda-label", "guideline"]
    display_reason: Text | None = Field(
        default=None, description="Why the display is not the severity's (DEFAULT_DISPLAY)."
    )


class AllergenGroup(_Strict):
    """Tier 2: ingredients that share an allergenic determinant (e.g. all penicillins)."""

    id: AllergenGroupId
    label: str = Field(min_length=3, max_length=200)
    members: tuple[Member, ...] = Field(min_length=1)
    # Allergy records coded as a substance/class rather than an ingredient map to this group.
    snomed_codes: tuple[Annotated[str, Field(pattern=r"^[0-9]{6,18}$")], ...] = ()
    citations: tuple[CitationId, ...] = Field(min_length=1)


class CrossSensitivity(_Strict):
    """Tier 3: an allergy to ``from_group``; a proposed drug in ``to_group`` or ``to_members``."""

    id: RuleId
    from_group: AllergenGroupId = Field(alias="from")
    to_group: AllergenGroupId | None = Field(default=None, alias="to")
    # Or an explicit, narrower list (e.g. the cephalosporins sharing a penicillin R1 side chain).
    to_members: tuple[Member, ...] = ()
    level: CrossSensitivityLevel
    rationale: Text
    management: Text
    citations: tuple[CitationId, ...] = Field(min_length=1)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_target(self) -> CrossSensitivity:
        if (self.to_group is None) == (not self.to_members):
            raise ValueError("a cross-sensitivity names exactly one of 'to' or 'to_members'")
        return self


class DuplicateClass(_Strict):
    """Same therapeutic class: alert when more than ``1 + allowance`` members are active."""

    id: DuplicateClassId
    label: str = Field(min_length=3, max_length=200)
    members: tuple[Member, ...] = ()
    members_of: ClassId | None = Field(default=None, description="Reuse a drug class's members.")
    allowance: int = Field(ge=0, le=5, description="0 = alert on the second distinct member.")
    severity: Severity
    display: Display
    management: Text
    citations: tuple[CitationId, ...] = Field(min_length=1)
    routes: tuple[RouteCategory, ...] | None = None
    display_reason: Text | None = Field(
        default=None, description="Why the display is not the severity's (DEFAULT_DISPLAY)."
    )

    @model_validator(mode="after")
    def _members(self) -> DuplicateClass:
        if (self.members_of is None) == (not self.members):
            raise ValueError("a duplicate class names exactly one of 'members' or 'members_of'")
        return self


class DoseUnit(StrEnum):
    """UCUM codes of an amount of an ingredient that dose limits are written in."""

    G = "g"
    MG = "mg"
    UG = "ug"
    UNITS = "[iU]"
    MEQ = "meq"
    MMOL = "mmol"


Amount = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class DoseLimit(_Strict):
    """Adult dose limits of one ingredient from its labelling (high-alert medications).

    Amounts are of the ingredient (the labelled strength basis) in ``unit``, per kg of body
    weight when ``per_kg``. A proposed dose above ``max_single`` (one administration), above
    ``max_daily`` (administrations per day x dose), above ``max_weekly``, given more often than
    ``max_administrations_per_week``, or below ``min_daily`` is flagged. Where the label's limits
    differ by indication, the highest adult limit of any labelled indication is used (the check
    must not fire on a labelled regimen) and ``indication_note`` says so.
    """

    id: RuleId = Field(description="DOSE-<SLUG>")
    ingredient: Member
    routes: tuple[RouteCategory, ...] | None = None
    administration: Literal["oral", "parenteral"] | None = Field(
        default=None,
        description="Only products of this kind (read from the RxNorm dose form; a code without "
        "a dose form is checked too): e.g. methotrexate's weekly limit is the oral one.",
    )
    unit: DoseUnit
    per_kg: bool = False
    max_single: Amount | None = None
    max_daily: Amount | None = None
    max_weekly: Amount | None = None
    max_administrations_per_week: int | None = Field(default=None, ge=1, le=7)
    min_daily: Amount | None = None
    indication_note: Text
    severity: Severity
    display: Display
    display_reason: Text | None = None
    rationale: Text = Field(description="What an overdose (or underdose) risks, our own words.")
    management: Text
    citations: tuple[CitationId, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _some_limit(self) -> DoseLimit:
        limits = (
            self.max_single,
            self.max_daily,
            self.max_weekly,
            self.max_administrations_per_week,
            self.min_daily,
        )
        if all(limit is None for limit in limits):
            raise ValueError("a dose limit names at least one limit")
        low, high = self.min_daily, self.max_daily
        if low is not None and high is not None and low >= high:
            raise ValueError("min_daily must be below max_daily")
        return self


class KnowledgeFile(_Strict):
    """One YAML file under ``data/sources/``."""

    description: str | None = None
    # The KB release label (semver or ISO date); at most one file sets it (the KB version is
    # ``<release>+<content hash>``, ``0.0.0+<hash>`` when no file sets one).
    release: str | None = Field(
        default=None, pattern=r"^([0-9]+\.[0-9]+\.[0-9]+|[0-9]{4}-[0-9]{2}-[0-9]{2})$"
    )
    citations: tuple[Citation, ...] = ()
    classes: tuple[DrugClass, ...] = ()
    interactions: tuple[InteractionRule, ...] = ()
    allergen_groups: tuple[AllergenGroup, ...] = ()
    cross_sensitivities: tuple[CrossSensitivity, ...] = ()
    duplicate_classes: tuple[DuplicateClass, ...] = ()
    dose_limits: tuple[DoseLimit, ...] = ()
