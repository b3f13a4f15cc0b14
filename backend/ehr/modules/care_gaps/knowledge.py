"""The care-gap knowledge file's schema: what a reviewer reads in ``data/care_gaps.yaml``.

One YAML file, validated here field by field and then as a whole (every cross-reference is checked
when the file is loaded, so a typo fails at start-up, not at the bedside). The codes it lists and
their checks: :mod:`ehr.modules.care_gaps.codes`.

Identifiers
- Care gaps: ``gap:<slug>`` (kinds ``immunization``, ``screening``, ``monitoring``); result rules:
  ``result:<slug>`` (kind ``result``). The id is the reminder's rule id (a card's
  ``source.topic.code``).
- Condition sets: ``cond:<slug>``; measures, evidence groups, exclusions, components: ``<slug>``.
- Citations are ids into the ``citations`` section.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping
from importlib.resources import files
from typing import Annotated, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ehr.modules.care_gaps.codes import (
    CODE_SYSTEM_URIS,
    EVIDENCE_RESOURCE,
    CodeList,
    CodeSystem,
    EvidenceResource,
    is_valid_code,
)

__all__ = [
    "INDICATOR_RANK",
    "KNOWLEDGE_FILE",
    "OBSERVATION_CODES",
    "CareGap",
    "CareGapKnowledge",
    "Citation",
    "ConditionSet",
    "Eligibility",
    "EvidenceGroup",
    "Exclusion",
    "Indicator",
    "Measure",
    "MeasureComponent",
    "OrderCode",
    "ResultRule",
    "SuggestedOrder",
    "Threshold",
    "ThresholdCondition",
    "load_care_gap_knowledge",
    "parse_care_gap_knowledge",
]

KNOWLEDGE_FILE: Final = "care_gaps.yaml"

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=60)]
GapId = Annotated[str, Field(pattern=r"^gap:[a-z0-9][a-z0-9-]*$", max_length=80)]
ResultId = Annotated[str, Field(pattern=r"^result:[a-z0-9][a-z0-9-]*$", max_length=80)]
ConditionSetId = Annotated[str, Field(pattern=r"^cond:[a-z0-9][a-z0-9-]*$", max_length=80)]
CitationId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=80)]
Text = Annotated[str, Field(min_length=3, max_length=2000)]
Label = Annotated[str, Field(min_length=2, max_length=80)]
Title = Annotated[str, Field(min_length=3, max_length=80)]
Years = Annotated[int, Field(ge=0, le=130)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Citation(_Strict):
    id: CitationId
    label: Label = Field(description="Short name, the label of the card's link.")
    text: Text = Field(description="Full reference (body, title, year).")
    url: str = Field(pattern=r"^https://[^\s]+$")


_EVIDENCE_SYSTEMS: Final[frozenset[CodeSystem]] = frozenset(EVIDENCE_RESOURCE)
_PROCEDURE_SYSTEMS: Final[frozenset[CodeSystem]] = frozenset({"snomed", "cpt", "hcpcs"})
_CONDITION_SYSTEMS: Final[frozenset[CodeSystem]] = frozenset({"snomed", "icd10cm"})
_LOINC_ONLY: Final[frozenset[CodeSystem]] = frozenset({"loinc"})


class OrderCode(_Strict):
    system: Literal["cvx", "loinc", "snomed", "cpt", "hcpcs"]
    code: str
    display: Label

    @model_validator(mode="after")
    def _valid(self) -> OrderCode:
        if not is_valid_code(self.system, self.code):
            raise ValueError(f"{self.code!r} is not a valid {self.system} concept code")
        return self


class SuggestedOrder(_Strict):
    """The card's one suggestion: a draft ServiceRequest with this code."""

    label: Label = Field(description='The suggestion button, e.g. "Order screening colonoscopy".')
    code: OrderCode


class ConditionSet(_Strict):
    id: ConditionSetId
    label: Label
    codes: CodeList

    @model_validator(mode="after")
    def _systems(self) -> ConditionSet:
        self.codes.only(_CONDITION_SYSTEMS, self.id)
        if self.codes.is_empty():
            raise ValueError(f"{self.id}: a condition set needs codes")
        return self


class Eligibility(_Strict):
    """Who the rule is for. Ages are the patient's completed age today; bounds are inclusive."""

    min_age_years: Years | None = None
    min_age_months: Annotated[int, Field(ge=1, le=23)] | None = None
    max_age_years: Years | None = None
    # None = any sex. A rule for one sex is skipped when Patient.gender is unknown/other/absent.
    sex: Literal["female", "male"] | None = None
    # The patient must have an active Condition from this set on the problem list.
    active_condition: ConditionSetId | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Eligibility:
        if self.min_age_years is not None and self.min_age_months is not None:
            raise ValueError("give min_age_years or min_age_months, not both")
        low = self.min_age_years or 0
        if self.max_age_years is not None and self.max_age_years < low:
            raise ValueError("max_age_years is below the minimum age")
        return self

    def has_age_bounds(self) -> bool:
        return any(
            bound is not None
            for bound in (self.min_age_years, self.min_age_months, self.max_age_years)
        )


class EvidenceGroup(_Strict):
    """One way to satisfy a gap: any of ``codes`` recorded within the look-back."""

    id: Slug
    label: Label = Field(description='What it is, for the card: "colonoscopy", "FIT or gFOBT".')
    codes: CodeList
    # Exactly one of the three look-backs.
    lookback_months: Annotated[int, Field(ge=1, le=600)] | None = None
    since_season_start: str | None = Field(
        default=None,
        pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
        description="MM-DD: counts when given on or after the last such day (flu season).",
    )
    ever: bool = False
    doses: Annotated[int, Field(ge=1, le=10)] = Field(
        default=1, description="Distinct dates needed within the look-back (a series)."
    )
    # This way of satisfying the gap applies only at these ages (e.g. primary hrHPV from 30).
    min_age_years: Years | None = None
    max_age_years: Years | None = None
    source: str | None = Field(default=None, description="Where the code list comes from.")

    @model_validator(mode="after")
    def _shape(self) -> EvidenceGroup:
        chosen = [
            self.lookback_months is not None,
            self.since_season_start is not None,
            self.ever,
        ]
        if chosen.count(True) != 1:
            raise ValueError(
                f"{self.id}: give exactly one of lookback_months, since_season_start, ever"
            )
        self.codes.only(_EVIDENCE_SYSTEMS, self.id)
        if self.codes.is_empty():
            raise ValueError(f"{self.id}: an evidence group needs codes")
        return self

    def resources(self) -> frozenset[EvidenceResource]:
        return frozenset(EVIDENCE_RESOURCE[system] for system, _ in self.codes.items())


class Exclusion(_Strict):
    """The gap does not apply: a completed procedure or a (non-refuted) condition, any date."""

    id: Slug
    label: Label
    procedures: CodeList = CodeList()
    conditions: CodeList = CodeList()
    source: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> Exclusion:
        self.procedures.only(_PROCEDURE_SYSTEMS, f"{self.id}.procedures")
        self.conditions.only(_CONDITION_SYSTEMS, f"{self.id}.conditions")
        if self.procedures.is_empty() and self.conditions.is_empty():
            raise ValueError(f"{self.id}: an exclusion needs procedure or condition codes")
        return self


class CareGap(_Strict):
    id: GapId
    kind: Literal["immunization", "screening", "monitoring"]
    title: Title = Field(description="The topic display: what the reminder is about.")
    summary: Annotated[str, Field(min_length=5, max_length=70)] = Field(
        description='The card summary before "(last: ...)", e.g. "Colorectal cancer screening due".'
    )
    eligibility: Eligibility
    satisfied_by: tuple[EvidenceGroup, ...] = Field(min_length=1)
    exclusions: tuple[Exclusion, ...] = ()
    citations: tuple[CitationId, ...] = Field(min_length=1)
    order: SuggestedOrder | None = None
    note: Text | None = Field(default=None, description="Shown in the card detail.")

    @model_validator(mode="after")
    def _consistent(self) -> CareGap:
        ids = Counter(group.id for group in self.satisfied_by) + Counter(
            exclusion.id for exclusion in self.exclusions
        )
        duplicated = sorted(key for key, count in ids.items() if count > 1)
        if duplicated:
            raise ValueError(f"{self.id}: duplicate group/exclusion ids {duplicated}")
        seen: set[tuple[str, str]] = set()
        for group in self.satisfied_by:
            immunization = group.resources() == {"Immunization"}
            if (self.kind == "immunization") != immunization:
                raise ValueError(
                    f"{self.id}/{group.id}: immunization gaps use CVX codes only, other gaps none"
                )
            for item in group.codes.items():
                if item in seen:
                    raise ValueError(f"{self.id}: {item[0]} {item[1]} is in two groups")
                seen.add(item)
        if (
            self.order is not None
            and self.kind == "immunization"
            and self.order.code.system != ("cvx")
        ):
            raise ValueError(f"{self.id}: an immunization's order is coded in CVX")
        return self


class MeasureComponent(_Strict):
    id: Slug
    label: Label
    codes: CodeList

    @model_validator(mode="after")
    def _loinc(self) -> MeasureComponent:
        self.codes.only(_LOINC_ONLY, self.id)
        if self.codes.is_empty():
            raise ValueError(f"{self.id}: a component needs LOINC codes")
        return self


class Measure(_Strict):
    """A measurement: standalone Observations per component, or a panel with components."""

    id: Slug
    label: Label = Field(description='As in the summary: "BP", "HbA1c".')
    panel_codes: CodeList = CodeList()
    components: tuple[MeasureComponent, ...] = Field(min_length=1)
    units: tuple[str, ...] = Field(
        min_length=1, description="Accepted valueQuantity units (UCUM code, else unit)."
    )
    display_unit: Annotated[str, Field(min_length=1, max_length=10)]

    @model_validator(mode="after")
    def _shape(self) -> Measure:
        self.panel_codes.only(_LOINC_ONLY, f"{self.id}.panel_codes")
        ids = [component.id for component in self.components]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self.id}: duplicate component ids")
        return self


class ThresholdCondition(_Strict):
    component: Slug
    at_least: float | None = None
    greater_than: float | None = None

    @model_validator(mode="after")
    def _one(self) -> ThresholdCondition:
        if (self.at_least is None) == (self.greater_than is None):
            raise ValueError("give exactly one of at_least or greater_than")
        return self

    def met(self, value: float) -> bool:
        if self.at_least is not None:
            return value >= self.at_least
        return self.greater_than is not None and value > self.greater_than


Indicator = Literal["critical", "warning", "info"]
INDICATOR_RANK: Final[Mapping[str, int]] = {"critical": 0, "warning": 1, "info": 2}


class Threshold(_Strict):
    indicator: Indicator
    label: Annotated[str, Field(min_length=3, max_length=60)] = Field(
        description="Ends the summary, e.g. 'hypertensive crisis range'."
    )
    advice: Text
    any_of: tuple[ThresholdCondition, ...] = Field(min_length=1)


class ResultRule(_Strict):
    id: ResultId
    kind: Literal["result"]
    title: Title
    measure: Slug
    eligibility: Eligibility = Eligibility()
    max_age_months: Annotated[int, Field(ge=1, le=120)] = Field(
        description="Only a measurement this recent is judged."
    )
    # Checked in order, the first that matches wins: most severe first.
    thresholds: tuple[Threshold, ...] = Field(min_length=1)
    citations: tuple[CitationId, ...] = Field(min_length=1)
    note: Text | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ResultRule:
        ranks = [INDICATOR_RANK[threshold.indicator] for threshold in self.thresholds]
        if ranks != sorted(ranks):
            raise ValueError(f"{self.id}: thresholds must be listed most severe first")
        return self


class CareGapKnowledge(_Strict):
    """The whole file, cross-checked."""

    description: str | None = None
    release: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    citations: tuple[Citation, ...] = Field(min_length=1)
    condition_sets: tuple[ConditionSet, ...] = ()
    measures: tuple[Measure, ...] = ()
    gaps: tuple[CareGap, ...] = ()
    results: tuple[ResultRule, ...] = ()

    @model_validator(mode="after")
    def _references(self) -> CareGapKnowledge:
        problems: list[str] = []

        def unique(kind: str, ids: list[str]) -> None:
            for key, count in Counter(ids).items():
                if count > 1:
                    problems.append(f"{kind} id {key} is used {count} times")

        unique("citation", [citation.id for citation in self.citations])
        unique("condition set", [item.id for item in self.condition_sets])
        unique("measure", [item.id for item in self.measures])
        unique("rule", [gap.id for gap in self.gaps] + [rule.id for rule in self.results])

        citations = {citation.id for citation in self.citations}
        condition_sets = {item.id for item in self.condition_sets}
        measures = {item.id: item for item in self.measures}
        used_citations: set[str] = set()
        used_measures: set[str] = set()
        rules: list[CareGap | ResultRule] = [*self.gaps, *self.results]
        for rule in rules:
            for citation in rule.citations:
                used_citations.add(citation)
                if citation not in citations:
                    problems.append(f"{rule.id}: unknown citation {citation}")
            needed = rule.eligibility.active_condition
            if needed is not None and needed not in condition_sets:
                problems.append(f"{rule.id}: unknown condition set {needed}")
        for result in self.results:
            measure = measures.get(result.measure)
            if measure is None:
                problems.append(f"{result.id}: unknown measure {result.measure}")
                continue
            used_measures.add(measure.id)
            components = {component.id for component in measure.components}
            for threshold in result.thresholds:
                for condition in threshold.any_of:
                    if condition.component not in components:
                        problems.append(
                            f"{result.id}: {measure.id} has no component {condition.component}"
                        )
        problems.extend(
            f"citation {item} is not used" for item in sorted(citations - used_citations)
        )
        problems.extend(
            f"measure {item} is not used" for item in sorted(set(measures) - used_measures)
        )
        used_sets = {rule.eligibility.active_condition for rule in rules}
        problems.extend(
            f"condition set {item} is not used" for item in sorted(condition_sets - used_sets)
        )
        # A LOINC code means one thing: it cannot be both a panel and a component, or in two.
        loinc_owner: dict[str, str] = {}
        for measure in self.measures:
            lists = [(f"{measure.id}.panel", measure.panel_codes)] + [
                (f"{measure.id}.{component.id}", component.codes)
                for component in measure.components
            ]
            for where, codes in lists:
                for code in codes.loinc:
                    if code in loinc_owner:
                        problems.append(f"LOINC {code} is in {loinc_owner[code]} and {where}")
                    loinc_owner[code] = where
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def citation(self, citation_id: str) -> Citation:
        for citation in self.citations:
            if citation.id == citation_id:
                return citation
        raise KeyError(citation_id)

    def condition_set(self, set_id: str) -> ConditionSet:
        for item in self.condition_sets:
            if item.id == set_id:
                return item
        raise KeyError(set_id)

    def measure(self, measure_id: str) -> Measure:
        for item in self.measures:
            if item.id == measure_id:
                return item
        raise KeyError(measure_id)

    def observation_codes(self) -> tuple[str, ...]:
        """``system|code`` of every Observation code a rule reads, sorted."""
        tokens: set[str] = set()
        uri = CODE_SYSTEM_URIS["loinc"]
        for gap in self.gaps:
            for group in gap.satisfied_by:
                tokens.update(f"{uri}|{code}" for code in group.codes.loinc)
        for measure in self.measures:
            tokens.update(f"{uri}|{code}" for code in measure.panel_codes.loinc)
            for component in measure.components:
                tokens.update(f"{uri}|{code}" for code in component.codes.loinc)
        return tuple(sorted(tokens))


def parse_care_gap_knowledge(text: str) -> CareGapKnowledge:
    """Validate a care-gap YAML document (schema and cross-references)."""
    data: object = yaml.safe_load(text)
    return CareGapKnowledge.model_validate(data)


@functools.cache
def load_care_gap_knowledge() -> CareGapKnowledge:
    """The shipped knowledge file, validated once per process."""
    resource = files("ehr.modules.care_gaps").joinpath("data").joinpath(KNOWLEDGE_FILE)
    return parse_care_gap_knowledge(resource.read_text(encoding="utf-8"))


# "system|code" of every Observation code the rules read (for the FHIR search ``code=``).
OBSERVATION_CODES: Final[tuple[str, ...]] = load_care_gap_knowledge().observation_codes()
