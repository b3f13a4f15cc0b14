"""Care-gap and result reminder cards for the ``patient-view`` and ``encounter-start`` services.

The knowledge (which gaps, who they are for, what closes them, thresholds, citations) is the
reviewable YAML file ``data/care_gaps.yaml`` (schema: :mod:`care_gaps_sources`); this module reads
the patient's chart against it and renders one CDS Hooks card per open gap or out-of-range result.

What is read from the record: ``Patient.birthDate`` / ``gender`` / ``deceased[x]`` / ``id``, codes,
statuses, dates and numeric values of Immunization, Procedure, Observation and Condition. Never free
text (notes, ``text`` elements, comments): cards carry codes, dates and values only, and nothing is
logged. Decisions, in short:

- Age is the completed age today from ``birthDate``; a partial birth date (``1970``, ``1970-05``)
  gives the youngest possible age. No birth date: rules with age bounds are skipped.
- A rule for one sex applies only when ``gender`` is ``female``/``male`` (else it is skipped).
- Deceased patients (``deceasedBoolean`` true, any ``deceasedDateTime``) get no cards.
- Evidence counts with status ``completed`` (Immunization, not subpotent; Procedure) or
  ``final``/``amended``/``corrected`` (Observation), on its own calendar date (a partial date
  counts as its earliest day; a record without a usable date is not evidence).
- ``patient-view``: gaps and result cards; ``encounter-start``: the gaps to close at this visit
  (immunizations, screenings, monitoring), no result cards.
- When ``chart.complete`` is False each card's detail says the check may have missed records.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Final, Literal

import yaml

from ehr.modules.cds_hooks.cards import (
    CARE_GAP_TOPIC_SYSTEM,
    IssuedCard,
    fingerprint_of,
    new_card_uuid,
)
from ehr.modules.cds_hooks.care_gaps_sources import (
    CODE_SYSTEM_ALIASES,
    CODE_SYSTEM_URIS,
    INDICATOR_RANK,
    CareGap,
    CareGapKnowledge,
    CodeList,
    CodeSystem,
    Eligibility,
    EvidenceGroup,
    Exclusion,
    Measure,
    ResultRule,
    SuggestedOrder,
    Threshold,
)
from ehr.modules.cds_hooks.chart import PatientChart
from ehr.modules.cds_hooks.schemas import (
    SUMMARY_MAX_CHARS,
    Action,
    Card,
    Coding,
    Indicator,
    Link,
    Source,
    Suggestion,
)

__all__ = [
    "KNOWLEDGE_FILE",
    "OBSERVATION_CODES",
    "SOURCE_LABEL",
    "CareGapKnowledge",
    "Hook",
    "care_gap_cards",
    "load_care_gap_knowledge",
    "parse_care_gap_knowledge",
]

Hook = Literal["patient-view", "encounter-start"]

KNOWLEDGE_FILE: Final = "care_gaps.yaml"
SOURCE_LABEL: Final = "EHR care gaps"

_OBSERVATION_DONE: Final = frozenset({"final", "amended", "corrected"})
_CONDITION_ACTIVE: Final = frozenset({"active", "recurrence", "relapse"})
_CONDITION_VOID: Final = frozenset({"refuted", "entered-in-error"})
_UCUM: Final = "http://unitsofmeasure.org"
_YEAR: Final = re.compile(r"^[0-9]{4}$")
_YEAR_MONTH: Final = re.compile(r"^[0-9]{4}-[0-9]{2}$")
_INCOMPLETE_NOTE: Final = (
    "_Part of the record could not be read (a search was cut short or a source failed): a "
    "dose, test or result may be missing from this check. Verify in the chart before acting._"
)


# --------------------------------------------------------------------------- knowledge


def parse_care_gap_knowledge(text: str) -> CareGapKnowledge:
    """Validate a care-gap YAML document (schema and cross-references)."""
    data: object = yaml.safe_load(text)
    return CareGapKnowledge.model_validate(data)


@functools.cache
def load_care_gap_knowledge() -> CareGapKnowledge:
    """The shipped knowledge file, validated once per process."""
    resource = files("ehr.modules.cds_hooks").joinpath("data").joinpath(KNOWLEDGE_FILE)
    return parse_care_gap_knowledge(resource.read_text(encoding="utf-8"))


# "system|code" of every Observation code the rules read (for the FHIR search ``code=``).
OBSERVATION_CODES: Final[tuple[str, ...]] = load_care_gap_knowledge().observation_codes()


# --------------------------------------------------------------------------- dates


@dataclass(frozen=True, slots=True)
class _When:
    instant: dt.datetime  # aware (UTC), orders records of the same day
    day: dt.date  # the record's own calendar date


def _parse_when(value: object) -> _When | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if _YEAR.match(text):
            day = dt.date(int(text), 1, 1)
        elif _YEAR_MONTH.match(text):
            day = dt.date(int(text[:4]), int(text[5:7]), 1)
        elif len(text) == 10:
            day = dt.date.fromisoformat(text)
        else:
            moment = dt.datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            return _When(instant=moment.astimezone(dt.UTC), day=moment.date())
    except ValueError:
        return None
    return _When(instant=dt.datetime.combine(day, dt.time(), dt.UTC), day=day)


def _latest_birth_date(value: object) -> dt.date | None:
    """The latest day a (possibly partial) birthDate can mean: the youngest possible age."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if _YEAR.match(text):
            return dt.date(int(text), 12, 31)
        if _YEAR_MONTH.match(text):
            year, month = int(text[:4]), int(text[5:7])
            return dt.date(year, month, calendar.monthrange(year, month)[1])
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


def _age_in_months(birth: dt.date, today: dt.date) -> int:
    months = (today.year - birth.year) * 12 + today.month - birth.month
    if today.day < birth.day:
        months -= 1
    return months


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by ``months`` calendar months (the day clamped to the month's length)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _season_start(today: dt.date, month_day: str) -> dt.date:
    month, day = int(month_day[:2]), int(month_day[3:])

    def on(year: int) -> dt.date:
        return dt.date(year, month, min(day, calendar.monthrange(year, month)[1]))

    start = on(today.year)
    return start if start <= today else on(today.year - 1)


# --------------------------------------------------------------------------- codes

_Code = tuple[CodeSystem, str]


def _normalise(system: CodeSystem, code: str) -> str:
    code = code.strip()
    if system == "cvx":
        return code.lstrip("0") or "0"
    if system == "icd10cm":
        return code.upper().replace(".", "")
    return code


def _codes_of(concept: object) -> frozenset[_Code]:
    if not isinstance(concept, Mapping):
        return frozenset()
    found: set[_Code] = set()
    codings = concept.get("coding")
    for coding in codings if isinstance(codings, list) else ():
        if not isinstance(coding, Mapping):
            continue
        system_uri, code = coding.get("system"), coding.get("code")
        if not isinstance(system_uri, str) or not isinstance(code, str) or not code.strip():
            continue
        system = CODE_SYSTEM_ALIASES.get(system_uri.strip())
        if system is not None:
            found.add((system, _normalise(system, code)))
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class _Matcher:
    codes: frozenset[_Code]
    icd10_prefixes: tuple[str, ...]

    @classmethod
    def of(cls, *lists: CodeList) -> _Matcher:
        codes = {
            (system, _normalise(system, code)) for items in lists for system, code in items.items()
        }
        prefixes = tuple(
            _normalise("icd10cm", prefix) for items in lists for prefix in items.icd10cm_prefixes
        )
        return cls(codes=frozenset(codes), icd10_prefixes=prefixes)

    def matches(self, codes: Iterable[_Code]) -> bool:
        for system, code in codes:
            if (system, code) in self.codes:
                return True
            if system == "icd10cm" and code.startswith(self.icd10_prefixes):
                return True
        return False


@functools.cache
def _matcher(*lists: CodeList) -> _Matcher:
    return _Matcher.of(*lists)


# --------------------------------------------------------------------------- the chart, read


@dataclass(frozen=True, slots=True)
class _Record:
    codes: frozenset[_Code]
    when: _When | None
    resource: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Facts:
    patient_id: str
    age_months: int | None
    sex: Literal["female", "male"] | None
    complete: bool
    immunizations: tuple[_Record, ...]
    procedures: tuple[_Record, ...]
    observations: tuple[_Record, ...]
    active_conditions: tuple[frozenset[_Code], ...]
    recorded_conditions: tuple[frozenset[_Code], ...]

    @property
    def age_years(self) -> int | None:
        return None if self.age_months is None else self.age_months // 12

    def records(self, system: CodeSystem) -> tuple[_Record, ...]:
        if system == "cvx":
            return self.immunizations
        if system == "loinc":
            return self.observations
        return self.procedures


def _status_code(concept: object) -> str | None:
    """The code of a CodeableConcept status (Condition.clinicalStatus / verificationStatus)."""
    if not isinstance(concept, Mapping):
        return None
    codings = concept.get("coding")
    for coding in codings if isinstance(codings, list) else ():
        if isinstance(coding, Mapping) and isinstance(coding.get("code"), str):
            code: str = coding["code"]
            return code
    return None


def _first_when(resource: Mapping[str, Any], *paths: tuple[str, ...]) -> _When | None:
    for path in paths:
        value: object = resource
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        when = _parse_when(value)
        if when is not None:
            return when
    return None


def _read_chart(chart: PatientChart, today: dt.date) -> _Facts | None:
    patient = chart.patient
    patient_id = patient.get("id")
    if not isinstance(patient_id, str) or not patient_id:
        raise ValueError("the chart's Patient has no id")
    deceased_time = patient.get("deceasedDateTime")
    if patient.get("deceasedBoolean") is True or (
        isinstance(deceased_time, str) and deceased_time.strip()
    ):
        return None
    birth = _latest_birth_date(patient.get("birthDate"))
    age_months = None if birth is None or birth > today else _age_in_months(birth, today)
    gender = patient.get("gender")
    sex: Literal["female", "male"] | None = (
        "female" if gender == "female" else "male" if gender == "male" else None
    )

    immunizations = tuple(
        _Record(
            _codes_of(item.get("vaccineCode")),
            _first_when(item, ("occurrenceDateTime",)),
            item,
        )
        for item in chart.immunizations
        if item.get("status") == "completed" and item.get("isSubpotent") is not True
    )
    procedures = tuple(
        _Record(
            _codes_of(item.get("code")),
            _first_when(
                item,
                ("performedDateTime",),
                ("performedPeriod", "start"),
                ("performedPeriod", "end"),
            ),
            item,
        )
        for item in chart.procedures
        if item.get("status") == "completed"
    )
    observations = tuple(
        _Record(
            _codes_of(item.get("code")),
            _first_when(
                item,
                ("effectiveDateTime",),
                ("effectivePeriod", "start"),
                ("effectiveInstant",),
                ("issued",),
            ),
            item,
        )
        for item in chart.observations
        if item.get("status") in _OBSERVATION_DONE
    )
    active: list[frozenset[_Code]] = []
    recorded: list[frozenset[_Code]] = []
    for condition in chart.conditions:
        if _status_code(condition.get("verificationStatus")) in _CONDITION_VOID:
            continue
        codes = _codes_of(condition.get("code"))
        recorded.append(codes)
        if _status_code(condition.get("clinicalStatus")) in _CONDITION_ACTIVE:
            active.append(codes)
    return _Facts(
        patient_id=patient_id,
        age_months=age_months,
        sex=sex,
        complete=chart.complete,
        immunizations=immunizations,
        procedures=procedures,
        observations=observations,
        active_conditions=tuple(active),
        recorded_conditions=tuple(recorded),
    )


# --------------------------------------------------------------------------- rules


def _age_ok(facts: _Facts, min_months: int | None, max_years: int | None) -> bool:
    if min_months is None and max_years is None:
        return True
    if facts.age_months is None:
        return False
    if min_months is not None and facts.age_months < min_months:
        return False
    return max_years is None or facts.age_months // 12 <= max_years


def _eligible(rule: Eligibility, facts: _Facts, knowledge: CareGapKnowledge) -> bool:
    min_months = rule.min_age_months
    if min_months is None and rule.min_age_years is not None:
        min_months = rule.min_age_years * 12
    if not _age_ok(facts, min_months, rule.max_age_years):
        return False
    if rule.sex is not None and facts.sex != rule.sex:
        return False
    if rule.active_condition is not None:
        matcher = _matcher(knowledge.condition_set(rule.active_condition).codes)
        return any(matcher.matches(codes) for codes in facts.active_conditions)
    return True


def _excluded(exclusion: Exclusion, facts: _Facts) -> bool:
    procedures = _matcher(exclusion.procedures)
    conditions = _matcher(exclusion.conditions)
    return any(procedures.matches(record.codes) for record in facts.procedures) or any(
        conditions.matches(codes) for codes in facts.recorded_conditions
    )


@dataclass(frozen=True, slots=True)
class _Finding:
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
        return day >= _season_start(today, group.since_season_start)
    return group.ever


def _find(group: EvidenceGroup, facts: _Facts, today: dt.date) -> _Finding:
    matcher = _matcher(group.codes)
    systems = {system for system, _ in group.codes.items()}
    days: set[dt.date] = set()
    seen: set[int] = set()
    for system in sorted(systems):
        for record in facts.records(system):
            if id(record) in seen or record.when is None or not matcher.matches(record.codes):
                continue
            seen.add(id(record))
            days.add(record.when.day)
    counted = sum(1 for day in days if _counts(group, day, today))
    window_start = (
        _season_start(today, group.since_season_start)
        if group.since_season_start is not None
        else None
    )
    return _Finding(group, counted, max(days, default=None), window_start)


def _group_applies(group: EvidenceGroup, facts: _Facts) -> bool:
    min_months = None if group.min_age_years is None else group.min_age_years * 12
    return _age_ok(facts, min_months, group.max_age_years)


@dataclass(frozen=True, slots=True)
class _Reading:
    when: _When
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


def _readings(measure: Measure, facts: _Facts) -> list[_Reading]:
    panel = _matcher(measure.panel_codes)
    parts = [(component.id, _matcher(component.codes)) for component in measure.components]
    readings: list[_Reading] = []
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
                item_codes = _codes_of(item.get("code"))
                for component_id, matcher in parts:
                    if component_id not in values and matcher.matches(item_codes):
                        value = _quantity(item.get("valueQuantity"), measure.units)
                        if value is not None:
                            values[component_id] = value
        if values:
            readings.append(_Reading(record.when, values))
    return readings


def _latest(readings: Sequence[_Reading]) -> _Reading | None:
    """The values measured at the most recent time (highest value if a component repeats)."""
    if not readings:
        return None
    newest = max(reading.when.instant for reading in readings)
    values: dict[str, float] = {}
    when = next(reading.when for reading in readings if reading.when.instant == newest)
    for reading in readings:
        if reading.when.instant != newest:
            continue
        for key, value in reading.values.items():
            values[key] = max(value, values.get(key, value))
    return _Reading(when, values)


def _triggered(threshold: Threshold, values: Mapping[str, float]) -> bool:
    return any(
        condition.component in values and condition.met(values[condition.component])
        for condition in threshold.any_of
    )


# --------------------------------------------------------------------------- rendering


def _clip(text: str) -> str:
    return text if len(text) <= SUMMARY_MAX_CHARS else text[: SUMMARY_MAX_CHARS - 1] + "…"


def _number(value: float) -> str:
    return f"{value:g}"


def _interval(group: EvidenceGroup) -> str:
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


def _who(rule: Eligibility, knowledge: CareGapKnowledge) -> str:
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


def _age_text(facts: _Facts) -> str:
    if facts.age_months is None:
        return "age unknown"
    if facts.age_months < 24:
        return f"{facts.age_months} months old"
    return f"{facts.age_months // 12} years old"


def _finding_line(finding: _Finding, today: dt.date) -> str:
    group = finding.group
    head = f"- {group.label} ({_interval(group)}): "
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


def _links(knowledge: CareGapKnowledge, citation_ids: Sequence[str]) -> list[Link]:
    return [
        Link(label=citation.label, url=citation.url, type="absolute")
        for citation in (knowledge.citation(item) for item in citation_ids)
    ]


def _references(knowledge: CareGapKnowledge, citation_ids: Sequence[str]) -> list[str]:
    return [f"- {knowledge.citation(item).text}" for item in citation_ids]


def _card(
    *,
    rule_id: str,
    title: str,
    citation_ids: Sequence[str],
    summary: str,
    detail: str,
    indicator: Indicator,
    knowledge: CareGapKnowledge,
    patient_id: str,
    order: SuggestedOrder | None,
) -> IssuedCard:
    first = knowledge.citation(citation_ids[0])
    suggestions = None if order is None else [_suggestion(order, patient_id)]
    card = Card(
        uuid=new_card_uuid(),
        summary=_clip(summary),
        detail=detail,
        indicator=indicator,
        source=Source(
            label=SOURCE_LABEL,
            url=first.url,
            topic=Coding(system=CARE_GAP_TOPIC_SYSTEM, code=rule_id, display=title),
        ),
        suggestions=suggestions,
        selection_behavior="at-most-one" if suggestions else None,
        links=_links(knowledge, citation_ids),
    )
    return IssuedCard(card=card, rule_id=rule_id, fingerprint=fingerprint_of(patient_id, rule_id))


def _suggestion(order: SuggestedOrder, patient_id: str) -> Suggestion:
    code = order.code
    service_request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "code": {
            "coding": [
                {
                    "system": CODE_SYSTEM_URIS[code.system],
                    "code": code.code,
                    "display": code.display,
                }
            ],
            "text": code.display,
        },
        "subject": {"reference": f"Patient/{patient_id}"},
    }
    return Suggestion(
        label=order.label,
        uuid=new_card_uuid(),
        is_recommended=True,
        actions=[
            Action(
                type="create",
                description=f"Draft order (proposal): {code.display}",
                resource=service_request,
            )
        ],
    )


def _gap_card(
    gap: CareGap, facts: _Facts, knowledge: CareGapKnowledge, today: dt.date
) -> IssuedCard | None:
    if not _eligible(gap.eligibility, facts, knowledge):
        return None
    if any(_excluded(exclusion, facts) for exclusion in gap.exclusions):
        return None
    findings = [
        _find(group, facts, today) for group in gap.satisfied_by if _group_applies(group, facts)
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
        f"**{gap.title}** is recommended for {_who(gap.eligibility, knowledge)}. "
        f"Patient: {_age_text(facts)}.",
        "",
        "Counts as done (none found in time):",
        *(_finding_line(finding, today) for finding in findings),
    ]
    if gap.exclusions:
        labels = ", ".join(exclusion.label for exclusion in gap.exclusions)
        lines += ["", f"Not applicable after: {labels} (none on record)."]
    if gap.note:
        lines += ["", gap.note]
    lines += ["", "Recommendation:", *_references(knowledge, gap.citations)]
    if not facts.complete:
        lines += ["", _INCOMPLETE_NOTE]
    return _card(
        rule_id=gap.id,
        title=gap.title,
        citation_ids=gap.citations,
        summary=summary,
        detail="\n".join(lines),
        indicator="info",
        knowledge=knowledge,
        patient_id=facts.patient_id,
        order=gap.order,
    )


def _condition_text(threshold: Threshold, measure: Measure) -> str:
    labels = {component.id: component.label for component in measure.components}
    parts = []
    for condition in threshold.any_of:
        if condition.at_least is not None:
            bound = f"≥ {_number(condition.at_least)}"
        else:
            bound = f"> {_number(condition.greater_than or 0.0)}"
        parts.append(f"{labels[condition.component]} {bound} {measure.display_unit}")
    return " or ".join(parts)


def _result_card(
    rule: ResultRule, facts: _Facts, knowledge: CareGapKnowledge, today: dt.date
) -> IssuedCard | None:
    if not _eligible(rule.eligibility, facts, knowledge):
        return None
    measure = knowledge.measure(rule.measure)
    reading = _latest(_readings(measure, facts))
    if reading is None or not today < add_months(reading.when.day, rule.max_age_months):
        return None
    threshold = next((t for t in rule.thresholds if _triggered(t, reading.values)), None)
    if threshold is None:
        return None
    shown = "/".join(
        _number(reading.values[component.id]) if component.id in reading.values else "?"
        for component in measure.components
    )
    day = reading.when.day.isoformat()
    summary = f"{measure.label} {shown} {measure.display_unit} on {day}: {threshold.label}"
    lines = [
        f"Latest {measure.label}: **{shown} {measure.display_unit}** on {day} "
        f"({threshold.label}: {_condition_text(threshold, measure)}).",
        "",
        threshold.advice,
        "",
        f"Only measurements from the last {rule.max_age_months} months are judged; values in "
        f"units other than {', '.join(measure.units)} are ignored.",
    ]
    if rule.note:
        lines += ["", rule.note]
    lines += ["", "Guideline:", *_references(knowledge, rule.citations)]
    if not facts.complete:
        lines += ["", _INCOMPLETE_NOTE]
    return _card(
        rule_id=rule.id,
        title=rule.title,
        citation_ids=rule.citations,
        summary=summary,
        detail="\n".join(lines),
        indicator=threshold.indicator,
        knowledge=knowledge,
        patient_id=facts.patient_id,
        order=None,
    )


def _cards(
    facts: _Facts, knowledge: CareGapKnowledge, today: dt.date, hook: Hook
) -> Iterator[IssuedCard]:
    for gap in knowledge.gaps:
        issued = _gap_card(gap, facts, knowledge, today)
        if issued is not None:
            yield issued
    if hook == "patient-view":
        for rule in knowledge.results:
            issued = _result_card(rule, facts, knowledge, today)
            if issued is not None:
                yield issued


def care_gap_cards(
    chart: PatientChart,
    *,
    today: dt.date,
    hook: Hook,
    knowledge: CareGapKnowledge | None = None,
) -> list[IssuedCard]:
    """Open care gaps (and, for ``patient-view``, out-of-range results) as cards.

    Ordered critical, warning, info, then by rule id. Raises ``ValueError`` when the chart's
    Patient has no id (the draft orders and fingerprints need it).
    """
    if hook not in ("patient-view", "encounter-start"):
        raise ValueError(f"unsupported hook {hook!r}")
    facts = _read_chart(chart, today)
    if facts is None:
        return []
    rules = knowledge if knowledge is not None else load_care_gap_knowledge()
    issued = list(_cards(facts, rules, today, hook))
    issued.sort(key=lambda item: (INDICATOR_RANK[item.card.indicator], item.rule_id))
    return issued
