"""Care-gap charts for tests (imported by name: ``from support.care_gaps import ...``).

Builders of the Patient, the evidence records (Immunization, Observation, Procedure) and the
Conditions a care-gap rule reads, charts of them (``make_chart``), the shipped knowledge narrowed
to some rules (``only``), and the cards those rules produce (``cards_for`` / ``fired`` /
``result_card``). Dates are relative to ``TODAY``; the patient id is ``PATIENT_ID``::

    chart = make_chart(eligible_patient(gap), [record("cvx", "150", TODAY)])
    assert fired(chart, gap) is None
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pytest

from ehr.modules.care_gaps import CareGapKnowledge, load_care_gap_knowledge
from ehr.modules.care_gaps.codes import CODE_SYSTEM_URIS, CodeSystem
from ehr.modules.care_gaps.dates import add_months
from ehr.modules.care_gaps.knowledge import CareGap, EvidenceGroup
from ehr.modules.cds_hooks.cards import IssuedCard
from ehr.modules.cds_hooks.care_gap_cards import care_gap_cards
from ehr.modules.cds_hooks.chart import PatientChart

__all__ = [
    "A1C",
    "ADULT",
    "BP",
    "GAPS",
    "GAP_IDS",
    "KNOWLEDGE",
    "PATIENT_ID",
    "TODAY",
    "all_cards",
    "birth_date_for",
    "bp_panel",
    "busy_charts",
    "cards_for",
    "concept",
    "condition",
    "dose_days",
    "eligible_age_months",
    "eligible_patient",
    "evidence_for",
    "exclusion_cases",
    "fired",
    "group_cases",
    "inside_day",
    "make_chart",
    "only",
    "outside_day",
    "patient",
    "quantity",
    "record",
    "required_conditions",
    "result_card",
    "single",
    "windowed_group_cases",
]

TODAY = dt.date(2025, 3, 15)
PATIENT_ID = "pat-1"
KNOWLEDGE = load_care_gap_knowledge()
GAPS = KNOWLEDGE.gaps
GAP_IDS = [gap.id for gap in GAPS]

# --------------------------------------------------------------------------- builders


def birth_date_for(age_months: int, today: dt.date = TODAY) -> str:
    return add_months(today, -age_months).isoformat()


def patient(
    *,
    age_months: int | None,
    sex: str | None = "female",
    today: dt.date = TODAY,
    **extra: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Patient", "id": PATIENT_ID}
    if age_months is not None:
        resource["birthDate"] = birth_date_for(age_months, today)
    if sex is not None:
        resource["gender"] = sex
    resource.update(extra)
    return resource


def concept(system: CodeSystem, code: str) -> dict[str, Any]:
    return {"coding": [{"system": CODE_SYSTEM_URIS[system], "code": code}]}


def record(
    system: CodeSystem, code: str, day: dt.date | str, status: str | None = None
) -> tuple[str, dict[str, Any]]:
    """(chart field, resource) for evidence coded ``system|code`` on ``day``."""
    when = day if isinstance(day, str) else day.isoformat()
    if system == "cvx":
        return "immunizations", {
            "resourceType": "Immunization",
            "status": status or "completed",
            "vaccineCode": concept(system, code),
            "occurrenceDateTime": when,
        }
    if system == "loinc":
        return "observations", {
            "resourceType": "Observation",
            "status": status or "final",
            "code": concept(system, code),
            "effectiveDateTime": when,
        }
    return "procedures", {
        "resourceType": "Procedure",
        "status": status or "completed",
        "code": concept(system, code),
        "performedDateTime": when,
    }


def condition(
    system: CodeSystem,
    code: str,
    *,
    clinical: str = "active",
    verification: str | None = "confirmed",
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "code": concept(system, code),
        "clinicalStatus": {"coding": [{"code": clinical}]},
    }
    if verification is not None:
        resource["verificationStatus"] = {"coding": [{"code": verification}]}
    return resource


def make_chart(
    pat: Mapping[str, Any],
    records: Iterable[tuple[str, dict[str, Any]]] = (),
    conditions: Sequence[Mapping[str, Any]] = (),
    *,
    complete: bool = True,
) -> PatientChart:
    fields: dict[str, list[dict[str, Any]]] = {
        "immunizations": [],
        "observations": [],
        "procedures": [],
    }
    for field, resource in records:
        fields[field].append(resource)
    return PatientChart(
        patient=pat,
        immunizations=fields["immunizations"],
        observations=fields["observations"],
        procedures=fields["procedures"],
        conditions=list(conditions),
        complete=complete,
    )


def only(*rules: Any) -> CareGapKnowledge:
    gaps = tuple(rule for rule in rules if isinstance(rule, CareGap))
    results = tuple(rule for rule in rules if not isinstance(rule, CareGap))
    return KNOWLEDGE.model_copy(update={"gaps": gaps, "results": results})


def cards_for(
    chart: PatientChart,
    *rules: Any,
    hook: str = "patient-view",
    today: dt.date = TODAY,
) -> list[IssuedCard]:
    knowledge = only(*rules) if rules else None
    return care_gap_cards(chart, today=today, hook=hook, knowledge=knowledge)  # type: ignore[arg-type]


def fired(chart: PatientChart, gap: CareGap, today: dt.date = TODAY) -> IssuedCard | None:
    issued = cards_for(chart, gap, hook="encounter-start", today=today)
    assert len(issued) <= 1
    return issued[0] if issued else None


# --------------------------------------------------------------------------- gap fixtures


def eligible_age_months(gap: CareGap, group: EvidenceGroup | None = None) -> int:
    rule = gap.eligibility
    if rule.min_age_months is not None:
        months = rule.min_age_months
    elif rule.min_age_years is not None:
        months = rule.min_age_years * 12
    else:
        months = 50 * 12
    if group is not None and group.min_age_years is not None:
        months = max(months, group.min_age_years * 12)
    return months


def required_conditions(gap: CareGap) -> list[dict[str, Any]]:
    if gap.eligibility.active_condition is None:
        return []
    codes = KNOWLEDGE.condition_set(gap.eligibility.active_condition).codes
    system, code = next(codes.items())
    return [condition(system, code)]


def eligible_patient(gap: CareGap, group: EvidenceGroup | None = None) -> dict[str, Any]:
    return patient(
        age_months=eligible_age_months(gap, group),
        sex=gap.eligibility.sex or "female",
    )


def inside_day(group: EvidenceGroup, today: dt.date = TODAY) -> dt.date:
    """The oldest date that still counts."""
    if group.lookback_months is not None:
        return add_months(today, -group.lookback_months) + dt.timedelta(days=1)
    if group.since_season_start is not None:
        month, day = int(group.since_season_start[:2]), int(group.since_season_start[3:])
        start = dt.date(today.year, month, day)
        return start if start <= today else dt.date(today.year - 1, month, day)
    return today - dt.timedelta(days=400)


def outside_day(group: EvidenceGroup, today: dt.date = TODAY) -> dt.date:
    """The most recent date that no longer counts."""
    return inside_day(group, today) - dt.timedelta(days=1)


def dose_days(group: EvidenceGroup, first: dt.date, count: int | None = None) -> list[dt.date]:
    return [first + dt.timedelta(days=60 * index) for index in range(count or group.doses)]


def group_cases() -> Iterator[Any]:
    for gap in GAPS:
        for group in gap.satisfied_by:
            for system in sorted({system for system, _ in group.codes.items()}):
                code = group.codes.codes(system)[0]
                yield pytest.param(gap, group, system, code, id=f"{gap.id}/{group.id}/{system}")


def windowed_group_cases() -> Iterator[Any]:
    for case in group_cases():
        group: EvidenceGroup = case.values[1]
        if not group.ever:
            yield case


def exclusion_cases() -> Iterator[Any]:
    for gap in GAPS:
        for exclusion in gap.exclusions:
            for kind, codes in (
                ("procedure", exclusion.procedures),
                ("condition", exclusion.conditions),
            ):
                systems = sorted({system for system, _ in codes.items()})
                for system in systems:
                    yield pytest.param(
                        gap,
                        exclusion,
                        kind,
                        system,
                        codes.codes(system)[0],
                        id=f"{gap.id}/{exclusion.id}/{kind}/{system}",
                    )
                for prefix in codes.icd10cm_prefixes:
                    yield pytest.param(
                        gap,
                        exclusion,
                        kind,
                        "icd10cm",
                        f"{prefix}.9",
                        id=f"{gap.id}/{exclusion.id}/{kind}/prefix-{prefix}",
                    )


def evidence_for(
    group: EvidenceGroup, system: CodeSystem, code: str, first: dt.date, count: int | None = None
) -> list[tuple[str, dict[str, Any]]]:
    return [record(system, code, day) for day in dose_days(group, first, count)]


# --------------------------------------------------------------------------- results

BP = next(rule for rule in KNOWLEDGE.results if rule.id == "result:blood-pressure")
A1C = next(rule for rule in KNOWLEDGE.results if rule.id == "result:hba1c")
ADULT = patient(age_months=50 * 12, sex="male")


def quantity(value: float, unit: str = "mm[Hg]") -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}


def bp_panel(
    systolic: float | None,
    diastolic: float | None,
    when: str = "2025-03-01T09:00:00Z",
    *,
    code: str = "85354-9",
    unit: str = "mm[Hg]",
    status: str = "final",
) -> tuple[str, dict[str, Any]]:
    components = []
    for loinc, value in (("8480-6", systolic), ("8462-4", diastolic)):
        if value is not None:
            components.append(
                {"code": concept("loinc", loinc), "valueQuantity": quantity(value, unit)}
            )
    return "observations", {
        "resourceType": "Observation",
        "status": status,
        "code": concept("loinc", code),
        "effectiveDateTime": when,
        "component": components,
    }


def single(
    code: str, value: float, unit: str, when: str = "2025-03-01T09:00:00Z", status: str = "final"
) -> tuple[str, dict[str, Any]]:
    return "observations", {
        "resourceType": "Observation",
        "status": status,
        "code": concept("loinc", code),
        "effectiveDateTime": when,
        "valueQuantity": quantity(value, unit),
    }


def result_card(chart: PatientChart, rule: Any) -> IssuedCard | None:
    issued = cards_for(chart, rule)
    assert len(issued) <= 1
    return issued[0] if issued else None


def busy_charts() -> Iterator[PatientChart]:
    """Patients who between them trigger every rule (and suggestion) at least once."""
    yield make_chart(
        patient(age_months=66 * 12, sex="male"),
        [
            bp_panel(185, 100),
            single("4548-4", 9.5, "%"),
            record("cvx", "187", dt.date(2024, 1, 1)),
            record("cvx", "115", dt.date(2010, 5, 5)),
        ],
        [condition("icd10cm", "E11.9")],
        complete=False,
    )
    yield make_chart(
        patient(age_months=50 * 12, sex="female"),
        [single("4548-4", 7.2, "%", "2024-08-01")],
        [condition("snomed", "44054006")],
    )
    yield make_chart(
        patient(age_months=45 * 12, sex="female"),
        [bp_panel(150, 85), record("loinc", "10524-7", dt.date(2018, 1, 1))],
    )
    yield make_chart(patient(age_months=12 * 12, sex="female"))
    yield make_chart(patient(age_months=7, sex="male"))


def all_cards() -> list[IssuedCard]:
    return [
        item
        for chart in busy_charts()
        for item in care_gap_cards(chart, today=TODAY, hook="patient-view")
    ]
