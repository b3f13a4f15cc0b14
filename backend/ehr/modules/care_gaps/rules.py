"""Care-gap rules applied to a chart's facts: who a rule is for, what excludes it, what evidence
closes it (inside which look-back), and the latest measurement a result rule judges."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from ehr.fhir import FhirDate
from ehr.modules.care_gaps.dates import add_months, season_start
from ehr.modules.care_gaps.facts import Facts, codes_of, matcher_for
from ehr.modules.care_gaps.knowledge import (
    CareGapKnowledge,
    Eligibility,
    EvidenceGroup,
    Exclusion,
    Measure,
    Threshold,
)

__all__ = [
    "Finding",
    "Reading",
    "eligible",
    "excluded",
    "find_evidence",
    "group_applies",
    "latest_reading",
    "readings_of",
    "triggered",
]

_UCUM: Final = "http://unitsofmeasure.org"


def _age_ok(facts: Facts, min_months: int | None, max_years: int | None) -> bool:
    if min_months is None and max_years is None:
        return True
    if facts.age_months is None:
        return False
    if min_months is not None and facts.age_months < min_months:
        return False
    return max_years is None or facts.age_months // 12 <= max_years


def eligible(rule: Eligibility, facts: Facts, knowledge: CareGapKnowledge) -> bool:
    min_months = rule.min_age_months
    if min_months is None and rule.min_age_years is not None:
        min_months = rule.min_age_years * 12
    if not _age_ok(facts, min_months, rule.max_age_years):
        return False
    if rule.sex is not None and facts.sex != rule.sex:
        return False
    if rule.active_condition is not None:
        matcher = matcher_for(knowledge.condition_set(rule.active_condition).codes)
        return any(matcher.matches(codes) for codes in facts.active_conditions)
    return True


def excluded(exclusion: Exclusion, facts: Facts) -> bool:
    procedures = matcher_for(exclusion.procedures)
    conditions = matcher_for(exclusion.conditions)
    return any(procedures.matches(record.codes) for record in facts.procedures) or any(
        conditions.matches(codes) for codes in facts.recorded_conditions
    )


@dataclass(frozen=True, slots=True)
class Finding:
    group: EvidenceGroup
    counted: int  # distinct dates inside the look-back
    last: dt.date | None  # most recent date on record, inside the look-back or not
    window_start: dt.date | None  # season start (since_season_start groups)

    @property
    def met(self) -> bool:
        return self.counted >= self.group.doses


def _counts(group: EvidenceGroup, day: dt.date, today: dt.date) -> bool:
    if group.lookback_months is not None:
        return today < add_months(day, group.lookback_months)
    if group.since_season_start is not None:
        return day >= season_start(today, group.since_season_start)
    return group.ever


def find_evidence(group: EvidenceGroup, facts: Facts, today: dt.date) -> Finding:
    matcher = matcher_for(group.codes)
    systems = {system for system, _ in group.codes.items()}
    days: set[dt.date] = set()
    seen: set[int] = set()
    for system in sorted(systems):
        for record in facts.records(system):
            if id(record) in seen or record.when is None or not matcher.matches(record.codes):
                continue
            seen.add(id(record))
            days.add(record.when.first)
    counted = sum(1 for day in days if _counts(group, day, today))
    window_start = (
        season_start(today, group.since_season_start)
        if group.since_season_start is not None
        else None
    )
    return Finding(group, counted, max(days, default=None), window_start)


def group_applies(group: EvidenceGroup, facts: Facts) -> bool:
    min_months = None if group.min_age_years is None else group.min_age_years * 12
    return _age_ok(facts, min_months, group.max_age_years)


@dataclass(frozen=True, slots=True)
class Reading:
    when: FhirDate
    values: Mapping[str, float]  # component id -> value


def _quantity(value: object, units: Sequence[str]) -> float | None:
    if not isinstance(value, Mapping):
        return None
    number = value.get("value")
    if isinstance(number, bool) or not isinstance(number, int | float):
        return None
    code, unit, system = value.get("code"), value.get("unit"), value.get("system")
    token = code if isinstance(code, str) and code and system in (_UCUM, None) else unit
    if not isinstance(token, str) or token.strip() not in units:
        return None
    return float(number)


def readings_of(measure: Measure, facts: Facts) -> list[Reading]:
    panel = matcher_for(measure.panel_codes)
    parts = [(component.id, matcher_for(component.codes)) for component in measure.components]
    readings: list[Reading] = []
    for record in facts.observations:
        if record.when is None:
            continue
        values: dict[str, float] = {}
        for component_id, matcher in parts:
            if matcher.matches(record.codes):
                value = _quantity(record.resource.get("valueQuantity"), measure.units)
                if value is not None:
                    values[component_id] = value
        if panel.codes and panel.matches(record.codes):
            items = record.resource.get("component")
            for item in items if isinstance(items, list) else ():
                if not isinstance(item, Mapping):
                    continue
                item_codes = codes_of(item.get("code"))
                for component_id, matcher in parts:
                    if component_id not in values and matcher.matches(item_codes):
                        value = _quantity(item.get("valueQuantity"), measure.units)
                        if value is not None:
                            values[component_id] = value
        if values:
            readings.append(Reading(record.when, values))
    return readings


def latest_reading(readings: Sequence[Reading]) -> Reading | None:
    """The values measured at the most recent time (highest value if a component repeats)."""
    if not readings:
        return None
    newest = max(reading.when.start for reading in readings)
    values: dict[str, float] = {}
    when = next(reading.when for reading in readings if reading.when.start == newest)
    for reading in readings:
        if reading.when.start != newest:
            continue
        for key, value in reading.values.items():
            values[key] = max(value, values.get(key, value))
    return Reading(when, values)


def triggered(threshold: Threshold, values: Mapping[str, float]) -> bool:
    return any(
        condition.component in values and condition.met(values[condition.component])
        for condition in threshold.any_of
    )
