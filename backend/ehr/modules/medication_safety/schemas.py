"""Request and response documents of the medication-safety API (``/api/medication-safety``).

Requests are bounded (at most :data:`MAX_ITEMS` items per list, :data:`MAX_CODINGS` codings per
item, short strings) and strict (unknown fields are refused): a malformed payload is a 422. A code
the knowledge base does not know is not malformed: it is answered with 200 and listed in
``unresolved``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ehr.modules.medication_safety.issues import IssueCategory
from ehr.modules.medication_safety.knowledge import (
    CrossSensitivityLevel,
    Display,
    RouteCategory,
    Severity,
)

__all__ = [
    "MAX_CODINGS",
    "MAX_ISSUES",
    "MAX_ITEMS",
    "AllergyIn",
    "CheckRequest",
    "CheckResponse",
    "CitationOut",
    "ClearedCheckOut",
    "CodingIn",
    "ImplicatedItemOut",
    "Include",
    "IngredientOut",
    "IssueOut",
    "KnowledgeBaseCounts",
    "KnowledgeBaseOut",
    "MedicationIn",
    "NotCheckableOut",
    "PatientCheckRequest",
    "PatientCheckResponse",
    "PatientContextIn",
    "PolicyIn",
    "PolicyOut",
    "ProfileSummary",
    "RuleList",
    "RuleOut",
    "RxNormTableOut",
    "SkipReason",
    "SkippedResource",
    "SourceFileOut",
    "SourceList",
    "UnresolvedCodeOut",
]

MAX_ITEMS: Final = 100
MAX_CODINGS: Final = 20
MAX_RULE_DISPLAY: Final = 1000
# Issues in one answer (the most severe first; the rest are counted in `issues_omitted`).
MAX_ISSUES: Final = 200

# What ``?include=`` may add to a check's answer.
Include = Literal["detected-issue", "cds-card"]
SourceList = Literal["onc-high-priority", "onc-non-interruptive", "fda-label", "guideline"]

_System = Annotated[str, StringConstraints(pattern=r"^\S+$", min_length=1, max_length=255)]
_Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
_Display = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
_Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
_ItemId = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$", max_length=100)
]
# A FHIR reference to an order or statement the proposed medication replaces.
_Replaced = Annotated[
    str,
    StringConstraints(
        pattern=r"^(MedicationRequest|MedicationStatement)/[A-Za-z0-9\-.]{1,64}$", max_length=84
    ),
]
_RuleId = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$", max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- requests


class CodingIn(_Strict):
    """A code: RxNorm (``http://www.nlm.nih.gov/research/umls/rxnorm``), NDC
    (``http://hl7.org/fhir/sid/ndc``) or, for allergies, a SNOMED CT substance."""

    system: _System = Field(examples=["http://www.nlm.nih.gov/research/umls/rxnorm"])
    code: _Code = Field(examples=["197806"])
    display: _Display | None = None


class _Item(_Strict):
    id: _ItemId | None = Field(
        default=None,
        description="Your key for the item, echoed in the findings (default: "
        "`proposed-1`, `active-1`, `allergy-1`, ... by position).",
    )
    label: _Label | None = Field(default=None, description="What to call the item in findings.")
    codings: list[CodingIn] = Field(default_factory=list, max_length=MAX_CODINGS)
    text: _Display | None = Field(default=None, description="Free text (not checkable alone).")

    @model_validator(mode="after")
    def _something(self) -> _Item:
        if not self.codings and self.text is None:
            raise ValueError("an item needs at least one coding or a text")
        return self


class DoseIn(_Strict):
    value: float = Field(gt=0, lt=1e9, allow_inf_nan=False)
    unit: str = Field(
        min_length=1,
        max_length=20,
        description="UCUM code: an amount (mg, g, ug, meq, [iU], mmol), a volume (mL) or a "
        "unit of the product ({tbl}, {capsule}, 1 ...).",
        examples=["mg", "{tbl}"],
    )


class DosageIn(_Strict):
    """A structured dose (a FHIR Dosage's dose and timing, flattened): ``dose`` per
    administration, ``frequency`` times per ``period`` ``period_unit``."""

    dose: DoseIn | None = None
    frequency: int = Field(default=1, ge=1, le=100)
    period: float | None = Field(default=None, ge=0.01, le=1e4, allow_inf_nan=False)
    period_unit: Literal["h", "d", "wk", "mo"] | None = None
    as_needed: bool = False
    max_per_day: DoseIn | None = Field(
        default=None, description="A PRN order's maximum amount in one day."
    )

    @model_validator(mode="after")
    def _period(self) -> DosageIn:
        if (self.period is None) != (self.period_unit is None):
            raise ValueError("period and period_unit go together")
        return self


class MedicationIn(_Item):
    """A medication: its codes (any RxCUI term type or an NDC) and optionally its route and
    (for a proposed one) its dosage, checked against the dose limits of high-alert drugs."""

    route: RouteCategory | None = Field(
        default=None, description="Overrides the route parsed from the code's dose form."
    )
    dosage: DosageIn | None = None


class AllergyIn(_Item):
    """An allergy or intolerance the patient has (already known to be active and not refuted)."""

    criticality: Literal["low", "high", "unable-to-assess"] | None = None


class PatientContextIn(_Strict):
    age_years: int | None = Field(default=None, ge=0, le=150)
    sex: Literal["female", "male", "other", "unknown"] | None = None
    weight_kg: float | None = Field(default=None, gt=0, le=700, allow_inf_nan=False)


def _unique_ids(*groups: list[MedicationIn] | list[AllergyIn]) -> None:
    seen: set[str] = set()
    for group in groups:
        for item in group:
            if item.id is None:
                continue
            if item.id in seen:
                raise ValueError(f"item id {item.id!r} is used twice")
            seen.add(item.id)


class CheckRequest(_Strict):
    """Explicit lists: check ``proposed`` against ``active``, each other and ``allergies``."""

    proposed: list[MedicationIn] = Field(min_length=1, max_length=MAX_ITEMS)
    active: list[MedicationIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    allergies: list[AllergyIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    patient: PatientContextIn | None = None

    @model_validator(mode="after")
    def _ids(self) -> CheckRequest:
        _unique_ids(self.proposed, self.active, self.allergies)
        return self


class PatientCheckRequest(_Strict):
    """Proposed medications for a patient whose profile is read from the FHIR server."""

    proposed: list[MedicationIn] = Field(min_length=1, max_length=MAX_ITEMS)
    replaces: list[_Replaced] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        description="Orders or statements the proposed medications replace (left out of the "
        "active list), e.g. `MedicationRequest/123` for a dose change.",
    )

    @model_validator(mode="after")
    def _ids(self) -> PatientCheckRequest:
        _unique_ids(self.proposed)
        return self


class PolicyIn(_Strict):
    """A tenant's display policy. Display only: the knowledge base's severities never change.

    An issue's display is, first match wins: ``rule_display[rule_id]``; else, when a severity's
    membership in ``interruptive_severities`` differs from the default (contraindicated, major),
    promoted → interruptive, demoted → passive (if it was interruptive); else the KB's display.
    """

    interruptive_severities: list[Severity] = Field(
        max_length=4, examples=[["contraindicated", "major"]]
    )
    rule_display: dict[_RuleId, Display] = Field(
        default_factory=dict,
        max_length=MAX_RULE_DISPLAY,
        description='Per-rule display, e.g. `{"ONC-NI-05": "informational"}`; every rule id '
        "must exist in the knowledge base.",
    )

    @model_validator(mode="after")
    def _distinct(self) -> PolicyIn:
        if len(set(self.interruptive_severities)) != len(self.interruptive_severities):
            raise ValueError("interruptive_severities lists a severity twice")
        return self


# --------------------------------------------------------------------------- check answers


class CitationOut(BaseModel):
    id: str
    text: str
    url: str | None = None


class IngredientOut(BaseModel):
    rxcui: str
    name: str


class ImplicatedItemOut(BaseModel):
    """A medication or allergy an issue is about, with the ingredients that matched in it."""

    kind: Literal["medication", "allergy"]
    role: Literal["proposed", "active", "allergy"]
    id: str
    label: str
    reference: str | None = Field(description="The FHIR resource, when the item is one.")
    ingredients: list[IngredientOut]
    class_id: str | None = Field(
        default=None, description="The drug class, allergen group or duplicate class matched."
    )
    class_label: str | None = None


class IssueOut(BaseModel):
    """One finding. ``implicated[0]`` is a proposed medication; for drug-allergy issues the
    allergy is ``implicated[1]``."""

    category: IssueCategory
    rule_id: str
    severity: Severity = Field(description="The knowledge base's; never changed by policy.")
    display: Display = Field(description="After the tenant's policy.")
    kb_display: Display = Field(description="The knowledge base's display for this rule.")
    title: str
    implicated: list[ImplicatedItemOut]
    mechanism: str | None
    consequence: str | None
    management: str
    note: str | None = None
    citations: list[CitationOut]
    source_list: str | None = Field(
        default=None, description="The published list a drug-drug rule comes from."
    )


class UnresolvedCodeOut(BaseModel):
    """A coding that could not be used (unknown code or a system we do not check)."""

    item_id: str
    kind: Literal["medication", "allergy"]
    system: str
    code: str
    display: str | None
    reason: Literal["unknown-code", "unsupported-system"]


class NotCheckableOut(BaseModel):
    """An item nothing could be checked for (no code resolved)."""

    item_id: str
    kind: Literal["medication", "allergy"]
    label: str
    reason: Literal["free-text-only", "no-code-resolved", "no-code"]


class ClearedCheckOut(BaseModel):
    """A cross-sensitivity the knowledge base rules out for this allergy and medication."""

    rule_id: str
    medication_id: str
    allergy_id: str
    rationale: str
    citations: list[CitationOut]


class ItemStatusOut(BaseModel):
    """What the check did with one input item (see ``status``)."""

    item_id: str
    kind: Literal["medication", "allergy"]
    role: Literal["proposed", "active", "allergy"]
    label: str
    status: Literal["checked", "unresolved", "not_checkable"] = Field(
        description="checked: screened as `ingredients` against `screened_against`; unresolved: "
        "it had codes, none known; not_checkable: free text only or no code."
    )
    ingredients: list[IngredientOut] = Field(
        default_factory=list, description="What a checked item resolved to."
    )
    without_rules: list[str] = Field(
        default_factory=list,
        description="RxCUIs of its ingredients that no knowledge-base rule names (checked, "
        "nothing can be found for them).",
    )
    screened_against: str | None = Field(
        default=None, description="The knowledge-base version a checked item was screened with."
    )
    dose: Literal["within-limits", "flagged", "not-checked", "no-dosage", "no-limit"] | None = (
        Field(default=None, description="A proposed medication's dose against the dose limits.")
    )


class CheckResponse(BaseModel):
    """The findings. ``interruptive`` is true when any issue's display is interruptive."""

    kb_version: str
    interruptive: bool
    items: list[ItemStatusOut] = Field(
        default_factory=list,
        description="One entry per input item, in input order: checked, unresolved or "
        "not_checkable.",
    )
    issues: list[IssueOut] = Field(description=f"At most {MAX_ISSUES}, the most severe first.")
    issues_omitted: int = Field(
        default=0, description="Issues found beyond those listed (the least severe)."
    )
    unresolved: list[UnresolvedCodeOut]
    not_checkable: list[NotCheckableOut]
    cleared: list[ClearedCheckOut]
    detected_issues: list[dict[str, Any]] | None = Field(
        default=None,
        description="FHIR R4 DetectedIssue resources, one per issue (`?include=detected-issue`; "
        "null otherwise).",
    )
    cds_cards: list[dict[str, Any]] | None = Field(
        default=None, description="CDS Hooks 2.0 cards, one per issue (`?include=cds-card`)."
    )


SkipReason = Literal[
    "status-not-active",
    "intent-not-an-order",
    "do-not-perform",
    "effective-period-ended",
    "replaced-by-proposed",
    "restricted",
    "clinical-status-not-active",
    "verification-refuted",
    "verification-entered-in-error",
    "not-a-medication-allergy",
]


class SkippedResource(BaseModel):
    """A resource of the patient's record that was read but left out of the check, and why."""

    reference: str = Field(examples=["MedicationRequest/123"])
    reason: SkipReason


class ProfileSummary(BaseModel):
    """What of the patient's record the check used."""

    patient_id: str
    medications_considered: int = Field(description="Active orders and statements checked.")
    allergies_considered: int
    skipped: list[SkippedResource]
    complete: bool = Field(
        description="False when the record had more resources than one check reads (the check "
        "then used the first ones only)."
    )
    age_years: int | None = None
    sex: Literal["female", "male", "other", "unknown"] | None = None
    weight_kg: float | None = Field(
        default=None, description="The latest body-weight Observation, for per-kg dose limits."
    )


class PatientCheckResponse(CheckResponse):
    """The findings for a patient, and which parts of the record were used."""

    profile: ProfileSummary


# --------------------------------------------------------------------------- knowledge base


class SourceFileOut(BaseModel):
    file: str
    sha256: str


class KnowledgeBaseCounts(BaseModel):
    ingredients: int
    classes: int
    citations: int
    interactions: int
    interactions_by_severity: dict[str, int]
    interactions_by_source_list: dict[str, int]
    allergen_groups: int
    cross_sensitivities_by_level: dict[str, int]
    duplicate_classes: int


class RxNormTableOut(BaseModel):
    """The RxNorm table codes are normalised with."""

    kind: str = Field(description="`subset` (shipped) or `full` (imported by an operator).")
    release: str | None = Field(description="The RxNorm release the table was built from.")
    concepts: int
    ndc_codes: int
    attribution: str


class KnowledgeBaseOut(BaseModel):
    """The knowledge base the checks use: version, provenance and contents."""

    version: str = Field(description="`<release>+<first 12 hex of the content hash>`.")
    release: str
    content_hash: str
    compiled_at: datetime | None = Field(
        default=None, description="When this server process compiled it."
    )
    sources: list[SourceFileOut]
    counts: KnowledgeBaseCounts
    rxnorm: RxNormTableOut


class RuleOut(BaseModel):
    """One rule. ``sides``: the two sides of a drug-drug rule, the allergen group and the
    target of a cross-sensitivity, the class of a duplicate-therapy rule."""

    id: str
    category: IssueCategory
    severity: Severity | None = Field(description="None for a cross-sensitivity of level none.")
    display: Display | None
    level: CrossSensitivityLevel | None = Field(
        default=None, description="Cross-sensitivities only."
    )
    sides: list[str]
    source_list: str | None = None
    builtin: bool = Field(default=False, description="An engine rule (not from the sources).")
    citations: list[CitationOut]


class RuleList(BaseModel):
    kb_version: str
    total: int
    items: list[RuleOut]


# --------------------------------------------------------------------------- policy


class PolicyOut(BaseModel):
    """The tenant's display policy (the default when none was saved)."""

    interruptive_severities: list[Severity]
    rule_display: dict[str, Display]
    is_default: bool
    updated_by: str | None = None
    updated_at: datetime | None = None
