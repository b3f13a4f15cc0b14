"""Care-gap and result reminders: a patient's chart read against the care-gap knowledge.

The knowledge (which gaps, who they are for, what closes them, thresholds, citations) is the
reviewable YAML file ``data/care_gaps.yaml`` (schema: :mod:`ehr.modules.care_gaps.knowledge`). One
:class:`~ehr.modules.care_gaps.schemas.Reminder` per open gap and, when asked for, per
out-of-range result; how the chart is read: :mod:`ehr.modules.care_gaps.facts`. Nothing is logged.
When ``chart.complete`` is False each reminder's detail says the check may have missed records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from ehr.modules.care_gaps.dates import add_months
from ehr.modules.care_gaps.facts import Facts, read_chart
from ehr.modules.care_gaps.knowledge import (
    INDICATOR_RANK,
    CareGap,
    CareGapKnowledge,
    ResultRule,
    load_care_gap_knowledge,
)
from ehr.modules.care_gaps.rules import (
    eligible,
    excluded,
    find_evidence,
    group_applies,
    latest_reading,
    readings_of,
    triggered,
)
from ehr.modules.care_gaps.schemas import CareGapChart, Reminder
from ehr.modules.care_gaps.wording import (
    INCOMPLETE_NOTE,
    age_text,
    condition_text,
    finding_line,
    number_text,
    reference_lines,
    who_text,
)

__all__ = ["find_reminders"]


def _gap_reminder(
    gap: CareGap, facts: Facts, knowledge: CareGapKnowledge, today: dt.date
) -> Reminder | None:
    if not eligible(gap.eligibility, facts, knowledge):
        return None
    if any(excluded(exclusion, facts) for exclusion in gap.exclusions):
        return None
    findings = [
        find_evidence(group, facts, today)
        for group in gap.satisfied_by
        if group_applies(group, facts)
    ]
    if not findings or any(finding.met for finding in findings):
        return None

    partial = next(
        (f for f in findings if f.group.doses > 1 and 0 < f.counted < f.group.doses), None
    )
    last = max((f.last for f in findings if f.last is not None), default=None)
    if partial is not None:
        summary = f"{gap.summary} ({partial.counted} of {partial.group.doses} doses on record)"
    elif last is not None:
        summary = f"{gap.summary} (last: {last.isoformat()})"
    else:
        summary = f"{gap.summary} (last: none on record)"

    lines = [
        f"**{gap.title}** is recommended for {who_text(gap.eligibility, knowledge)}. "
        f"Patient: {age_text(facts)}.",
        "",
        "Counts as done (none found in time):",
        *(finding_line(finding, today) for finding in findings),
    ]
    if gap.exclusions:
        labels = ", ".join(exclusion.label for exclusion in gap.exclusions)
        lines += ["", f"Not applicable after: {labels} (none on record)."]
    if gap.note:
        lines += ["", gap.note]
    lines += ["", "Recommendation:", *reference_lines(knowledge, gap.citations)]
    if not facts.complete:
        lines += ["", INCOMPLETE_NOTE]
    return Reminder(
        rule_id=gap.id,
        title=gap.title,
        summary=summary,
        detail="\n".join(lines),
        indicator="info",
        patient_id=facts.patient_id,
        citations=tuple(knowledge.citation(item) for item in gap.citations),
        order=gap.order,
    )


def _result_reminder(
    rule: ResultRule, facts: Facts, knowledge: CareGapKnowledge, today: dt.date
) -> Reminder | None:
    if not eligible(rule.eligibility, facts, knowledge):
        return None
    measure = knowledge.measure(rule.measure)
    reading = latest_reading(readings_of(measure, facts))
    if reading is None or not today < add_months(reading.when.first, rule.max_age_months):
        return None
    threshold = next((t for t in rule.thresholds if triggered(t, reading.values)), None)
    if threshold is None:
        return None
    shown = "/".join(
        number_text(reading.values[component.id]) if component.id in reading.values else "?"
        for component in measure.components
    )
    day = reading.when.first.isoformat()
    summary = f"{measure.label} {shown} {measure.display_unit} on {day}: {threshold.label}"
    lines = [
        f"Latest {measure.label}: **{shown} {measure.display_unit}** on {day} "
        f"({threshold.label}: {condition_text(threshold, measure)}).",
        "",
        threshold.advice,
        "",
        f"Only measurements from the last {rule.max_age_months} months are judged; values in "
        f"units other than {', '.join(measure.units)} are ignored.",
    ]
    if rule.note:
        lines += ["", rule.note]
    lines += ["", "Guideline:", *reference_lines(knowledge, rule.citations)]
    if not facts.complete:
        lines += ["", INCOMPLETE_NOTE]
    return Reminder(
        rule_id=rule.id,
        title=rule.title,
        summary=summary,
        detail="\n".join(lines),
        indicator=threshold.indicator,
        patient_id=facts.patient_id,
        citations=tuple(knowledge.citation(item) for item in rule.citations),
        order=None,
    )


def _reminders(
    facts: Facts, knowledge: CareGapKnowledge, today: dt.date, include_results: bool
) -> Iterator[Reminder]:
    for gap in knowledge.gaps:
        reminder = _gap_reminder(gap, facts, knowledge, today)
        if reminder is not None:
            yield reminder
    if include_results:
        for rule in knowledge.results:
            reminder = _result_reminder(rule, facts, knowledge, today)
            if reminder is not None:
                yield reminder


def find_reminders(
    chart: CareGapChart,
    *,
    today: dt.date,
    include_results: bool,
    knowledge: CareGapKnowledge | None = None,
) -> list[Reminder]:
    """Open care gaps (and, with ``include_results``, out-of-range results) of ``chart``.

    Ordered critical, warning, info, then by rule id. Raises ``ValueError`` when the chart's
    Patient has no id (the draft orders and fingerprints need it).
    """
    facts = read_chart(chart, today)
    if facts is None:
        return []
    rules = knowledge if knowledge is not None else load_care_gap_knowledge()
    found = list(_reminders(facts, rules, today, include_results))
    found.sort(key=lambda item: (INDICATOR_RANK[item.indicator], item.rule_id))
    return found
