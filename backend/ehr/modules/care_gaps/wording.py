"""The words of a reminder: who a rule is for, what counts as done, what was found, the thresholds.

Codes, dates and values only: nothing from the record's free text reaches these lines.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from typing import Final

from ehr.modules.care_gaps.dates import add_months
from ehr.modules.care_gaps.facts import Facts
from ehr.modules.care_gaps.knowledge import (
    CareGapKnowledge,
    Eligibility,
    EvidenceGroup,
    Measure,
    Threshold,
)
from ehr.modules.care_gaps.rules import Finding

__all__ = [
    "INCOMPLETE_NOTE",
    "age_text",
    "condition_text",
    "finding_line",
    "interval_text",
    "number_text",
    "reference_lines",
    "who_text",
]

INCOMPLETE_NOTE: Final = (
    "_Part of the record could not be read (a search was cut short or a source failed): a "
    "dose, test or result may be missing from this check. Verify in the chart before acting._"
)


def number_text(value: float) -> str:
    return f"{value:g}"


def interval_text(group: EvidenceGroup) -> str:
    doses = f"{group.doses} doses," if group.doses > 1 else ""
    if group.lookback_months is not None:
        months = group.lookback_months
        span = (
            f"{months // 12} year{'s' if months != 12 else ''}"
            if months % 12 == 0
            else f"{months} months"
        )
        return f"{doses} within {span}".strip()
    if group.since_season_start is not None:
        month, day = int(group.since_season_start[:2]), int(group.since_season_start[3:])
        return f"{doses} this season, since {day} {calendar.month_name[month]}".strip()
    return f"{doses} ever".strip() if doses else "ever"


def who_text(rule: Eligibility, knowledge: CareGapKnowledge) -> str:
    who = {"female": "women", "male": "men", None: "people"}[rule.sex]
    if rule.min_age_months is not None and rule.max_age_years is None:
        ages = f" aged {rule.min_age_months} months and older"
    elif rule.min_age_years is not None and rule.max_age_years is not None:
        ages = f" aged {rule.min_age_years} to {rule.max_age_years} years"
    elif rule.min_age_years is not None:
        ages = f" aged {rule.min_age_years} years and older"
    elif rule.max_age_years is not None:
        ages = f" aged up to {rule.max_age_years} years"
    else:
        ages = ""
    condition = (
        f" with {knowledge.condition_set(rule.active_condition).label} (active problem)"
        if rule.active_condition is not None
        else ""
    )
    return f"{who}{ages}{condition}"


def age_text(facts: Facts) -> str:
    if facts.age_months is None:
        return "age unknown"
    if facts.age_months < 24:
        return f"{facts.age_months} months old"
    return f"{facts.age_months // 12} years old"


def finding_line(finding: Finding, today: dt.date) -> str:
    group = finding.group
    head = f"- {group.label} ({interval_text(group)}): "
    if finding.last is None:
        return head + "none on record"
    if group.doses > 1:
        return head + (
            f"{finding.counted} of {group.doses} doses on record (last {finding.last.isoformat()})"
        )
    if group.lookback_months is not None:
        until = add_months(finding.last, group.lookback_months)
        return head + f"last {finding.last.isoformat()} (interval ended {until.isoformat()})"
    if finding.window_start is not None:
        return head + (
            f"last {finding.last.isoformat()} (before this season, which started "
            f"{finding.window_start.isoformat()})"
        )
    return head + f"last {finding.last.isoformat()}"


def reference_lines(knowledge: CareGapKnowledge, citation_ids: Sequence[str]) -> list[str]:
    return [f"- {knowledge.citation(item).text}" for item in citation_ids]


def condition_text(threshold: Threshold, measure: Measure) -> str:
    labels = {component.id: component.label for component in measure.components}
    parts = []
    for condition in threshold.any_of:
        if condition.at_least is not None:
            bound = f"≥ {number_text(condition.at_least)}"
        else:
            bound = f"> {number_text(condition.greater_than or 0.0)}"
        parts.append(f"{labels[condition.component]} {bound} {measure.display_unit}")
    return " or ".join(parts)
