"""Care-gap and result reminder cards, generated from the shipped ``data/care_gaps.yaml``.

Every gap is exercised: it fires for an eligible patient with nothing on record; each evidence
group (each code system it lists, and every listed code) closes it inside its look-back and no
longer just outside; age bounds (both sides), sex, exclusions, statuses that do not count. Result
rules: thresholds at their boundaries, most recent reading, panel vs standalone, age of the
reading, units. Every card produced passes the CDS Hooks models.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pytest
import yaml

from ehr.modules.cds_hooks.cards import CARE_GAP_TOPIC_SYSTEM, IssuedCard, fingerprint_of
from ehr.modules.cds_hooks.care_gaps import (
    OBSERVATION_CODES,
    SOURCE_LABEL,
    CareGapKnowledge,
    add_months,
    care_gap_cards,
    load_care_gap_knowledge,
    parse_care_gap_knowledge,
)
from ehr.modules.cds_hooks.care_gaps_sources import (
    CODE_SYSTEM_URIS,
    CareGap,
    CodeList,
    CodeSystem,
    EvidenceGroup,
    Exclusion,
    is_valid_code,
)
from ehr.modules.cds_hooks.chart import PatientChart
from ehr.modules.cds_hooks.schemas import SUMMARY_MAX_CHARS, Card

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


# --------------------------------------------------------------------------- knowledge file


def test_knowledge_loads_and_is_cached() -> None:
    assert load_care_gap_knowledge() is KNOWLEDGE
    kinds = {gap.kind for gap in GAPS}
    assert kinds == {"immunization", "screening", "monitoring"}
    assert {rule.id for rule in KNOWLEDGE.results} == {"result:blood-pressure", "result:hba1c"}
    assert set(GAP_IDS) >= {
        "gap:influenza-vaccine",
        "gap:td-tdap-booster",
        "gap:pneumococcal-vaccine",
        "gap:zoster-vaccine",
        "gap:hpv-vaccine",
        "gap:colorectal-cancer-screening",
        "gap:breast-cancer-screening",
        "gap:cervical-cancer-screening",
        "gap:diabetes-hba1c-monitoring",
    }


def test_every_code_is_well_formed() -> None:
    lists: list[CodeList] = [item.codes for item in KNOWLEDGE.condition_sets]
    for gap in GAPS:
        lists += [group.codes for group in gap.satisfied_by]
        for exclusion in gap.exclusions:
            lists += [exclusion.procedures, exclusion.conditions]
    for measure in KNOWLEDGE.measures:
        lists += [measure.panel_codes, *(component.codes for component in measure.components)]
    for codes in lists:
        for system, code in codes.items():
            assert is_valid_code(system, code), (system, code)


def test_observation_codes_cover_every_loinc_read() -> None:
    assert list(OBSERVATION_CODES) == sorted(set(OBSERVATION_CODES))
    assert all(token.startswith("http://loinc.org|") for token in OBSERVATION_CODES)
    expected = {
        "http://loinc.org|85354-9",
        "http://loinc.org|8480-6",
        "http://loinc.org|8462-4",
        "http://loinc.org|4548-4",
        "http://loinc.org|17856-6",
        "http://loinc.org|4549-2",
    }
    for gap in GAPS:
        for group in gap.satisfied_by:
            expected |= {f"http://loinc.org|{code}" for code in group.codes.loinc}
    assert expected <= set(OBSERVATION_CODES)


def test_check_digits_catch_typos() -> None:
    assert is_valid_code("loinc", "4548-4")
    assert not is_valid_code("loinc", "4548-5")
    assert is_valid_code("snomed", "73761001")
    assert not is_valid_code("snomed", "73761002")
    assert not is_valid_code("snomed", "73761011")  # not a concept partition


def _raw() -> dict[str, Any]:
    with open(_knowledge_path(), encoding="utf-8") as handle:
        data: dict[str, Any] = yaml.safe_load(handle)
    return data


def _knowledge_path() -> str:
    from importlib.resources import files

    return str(files("ehr.modules.cds_hooks").joinpath("data").joinpath("care_gaps.yaml"))


def _gap(data: dict[str, Any], gap_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(item for item in data["gaps"] if item["id"] == gap_id)
    return found


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: _gap(d, "gap:hpv-vaccine").update(citations=["nope"]), "unknown citation"),
        (
            lambda d: _gap(d, "gap:diabetes-hba1c-monitoring")["eligibility"].update(
                active_condition="cond:nope"
            ),
            "unknown condition set",
        ),
        (lambda d: d["results"][0].update(measure="nope"), "unknown measure"),
        (
            lambda d: d["results"][0]["thresholds"].reverse(),
            "most severe first",
        ),
        (
            lambda d: d["results"][1]["thresholds"][0]["any_of"][0].update(component="x"),
            "has no component",
        ),
        (
            lambda d: _gap(d, "gap:hpv-vaccine")["satisfied_by"][0]["codes"].update(
                loinc=["4548-4"]
            ),
            "CVX codes only",
        ),
        (
            lambda d: _gap(d, "gap:colorectal-cancer-screening")["satisfied_by"][0]["codes"].update(
                snomed=["73761002"]
            ),
            "not a valid snomed",
        ),
        (
            lambda d: _gap(d, "gap:colorectal-cancer-screening")["satisfied_by"][1]["codes"].update(
                loinc=["57905-3"]
            ),
            "not a valid loinc",
        ),
        (lambda d: d["gaps"].append(d["gaps"][0]), "is used 2 times"),
        (
            lambda d: _gap(d, "gap:td-tdap-booster")["satisfied_by"][0].update(ever=True),
            "exactly one of",
        ),
        (lambda d: d["citations"].append({**d["citations"][0], "id": "spare"}), "not used"),
    ],
)
def test_broken_knowledge_is_refused(mutate: Any, message: str) -> None:
    data = _raw()
    mutate(data)
    with pytest.raises(ValueError, match=message):
        parse_care_gap_knowledge(yaml.safe_dump(data))


def test_shipped_file_round_trips_through_the_parser() -> None:
    assert parse_care_gap_knowledge(yaml.safe_dump(_raw())) == KNOWLEDGE


# --------------------------------------------------------------------------- gaps: generated


@pytest.mark.parametrize("gap", GAPS, ids=GAP_IDS)
def test_gap_fires_for_eligible_patient_with_nothing_on_record(gap: CareGap) -> None:
    chart = make_chart(eligible_patient(gap), conditions=required_conditions(gap))
    issued = fired(chart, gap)
    assert issued is not None
    assert issued.rule_id == gap.id
    assert issued.card.indicator == "info"
    assert issued.card.summary == f"{gap.summary} (last: none on record)"
    assert "none on record" in (issued.card.detail or "")


@pytest.mark.parametrize(("gap", "group", "system", "code"), list(group_cases()))
def test_gap_closed_by_each_group_inside_its_lookback(
    gap: CareGap, group: EvidenceGroup, system: CodeSystem, code: str
) -> None:
    chart = make_chart(
        eligible_patient(gap, group),
        evidence_for(group, system, code, inside_day(group)),
        required_conditions(gap),
    )
    assert fired(chart, gap) is None


@pytest.mark.parametrize(("gap", "group", "system", "code"), list(windowed_group_cases()))
def test_gap_fires_again_just_outside_the_lookback(
    gap: CareGap, group: EvidenceGroup, system: CodeSystem, code: str
) -> None:
    last = outside_day(group)
    chart = make_chart(
        eligible_patient(gap, group),
        [record(system, code, last)],
        required_conditions(gap),
    )
    issued = fired(chart, gap)
    assert issued is not None
    assert issued.card.summary == f"{gap.summary} (last: {last.isoformat()})"
    assert last.isoformat() in (issued.card.detail or "")


@pytest.mark.parametrize("gap", GAPS, ids=GAP_IDS)
def test_every_listed_code_closes_the_gap(gap: CareGap) -> None:
    for group in gap.satisfied_by:
        for system, code in group.codes.items():
            chart = make_chart(
                eligible_patient(gap, group),
                evidence_for(group, system, code, inside_day(group)),
                required_conditions(gap),
            )
            assert fired(chart, gap) is None, (group.id, system, code)


@pytest.mark.parametrize(
    ("gap", "group"),
    [
        pytest.param(gap, group, id=f"{gap.id}/{group.id}")
        for gap in GAPS
        for group in gap.satisfied_by
        if group.doses > 1
    ],
)
def test_an_incomplete_series_fires_with_the_dose_count(gap: CareGap, group: EvidenceGroup) -> None:
    system, code = next(group.codes.items())
    chart = make_chart(
        eligible_patient(gap, group),
        evidence_for(group, system, code, inside_day(group), group.doses - 1),
    )
    issued = fired(chart, gap)
    assert issued is not None
    assert f"({group.doses - 1} of {group.doses} doses on record)" in issued.card.summary
    # The same dose recorded twice on one day is one dose.
    same_day = [record(system, code, inside_day(group)) for _ in range(group.doses)]
    assert fired(make_chart(eligible_patient(gap, group), same_day), gap) is not None


@pytest.mark.parametrize(
    ("gap", "group"),
    [
        pytest.param(gap, group, id=f"{gap.id}/{group.id}")
        for gap in GAPS
        for group in gap.satisfied_by
        if group.min_age_years is not None and group.min_age_years * 12 > eligible_age_months(gap)
    ],
)
def test_a_group_with_its_own_age_bound_does_not_count_below_it(
    gap: CareGap, group: EvidenceGroup
) -> None:
    system, code = next(group.codes.items())
    chart = make_chart(
        eligible_patient(gap),
        evidence_for(group, system, code, inside_day(group)),
        required_conditions(gap),
    )
    assert fired(chart, gap) is not None


def age_bound_cases() -> Iterator[Any]:
    for gap in GAPS:
        rule = gap.eligibility
        if rule.min_age_months is not None:
            yield pytest.param(gap, rule.min_age_months - 1, False, id=f"{gap.id}/below-min")
            yield pytest.param(gap, rule.min_age_months, True, id=f"{gap.id}/at-min")
        if rule.min_age_years is not None:
            months = rule.min_age_years * 12
            yield pytest.param(gap, months - 1, False, id=f"{gap.id}/below-min")
            yield pytest.param(gap, months, True, id=f"{gap.id}/at-min")
        if rule.max_age_years is not None:
            months = (rule.max_age_years + 1) * 12
            yield pytest.param(gap, months - 1, True, id=f"{gap.id}/at-max")
            yield pytest.param(gap, months, False, id=f"{gap.id}/above-max")


@pytest.mark.parametrize(("gap", "age_months", "fires"), list(age_bound_cases()))
def test_age_bounds(gap: CareGap, age_months: int, fires: bool) -> None:
    pat = patient(age_months=age_months, sex=gap.eligibility.sex or "male")
    chart = make_chart(pat, conditions=required_conditions(gap))
    assert (fired(chart, gap) is not None) is fires


@pytest.mark.parametrize(
    "gap", [gap for gap in GAPS if gap.eligibility.has_age_bounds()], ids=lambda gap: gap.id
)
def test_no_birth_date_skips_age_bound_gaps(gap: CareGap) -> None:
    chart = make_chart(patient(age_months=None), conditions=required_conditions(gap))
    assert fired(chart, gap) is None


@pytest.mark.parametrize(
    "gap", [gap for gap in GAPS if gap.eligibility.sex is not None], ids=lambda gap: gap.id
)
@pytest.mark.parametrize("gender", ["male", "other", "unknown", None])
def test_sex_specific_gaps_skip_the_other_or_unknown_sex(gap: CareGap, gender: str | None) -> None:
    pat = patient(age_months=eligible_age_months(gap), sex=gender)
    assert fired(make_chart(pat), gap) is None


@pytest.mark.parametrize(
    "gap", [gap for gap in GAPS if gap.eligibility.sex is None], ids=lambda gap: gap.id
)
@pytest.mark.parametrize("gender", ["female", "male", "other", None])
def test_gaps_for_everyone_ignore_gender(gap: CareGap, gender: str | None) -> None:
    pat = patient(age_months=eligible_age_months(gap), sex=gender)
    assert fired(make_chart(pat, conditions=required_conditions(gap)), gap) is not None


@pytest.mark.parametrize(("gap", "exclusion", "kind", "system", "code"), list(exclusion_cases()))
def test_exclusions(
    gap: CareGap, exclusion: Exclusion, kind: str, system: CodeSystem, code: str
) -> None:
    pat = eligible_patient(gap)
    old = dt.date(2001, 2, 3)
    if kind == "procedure":
        chart = make_chart(pat, [record(system, code, old)])
        not_done = make_chart(pat, [record(system, code, old, status="not-done")])
        assert fired(not_done, gap) is not None
    else:
        chart = make_chart(pat, conditions=[condition(system, code, clinical="resolved")])
        void = make_chart(
            pat, conditions=[condition(system, code, verification="entered-in-error")]
        )
        refuted = make_chart(pat, conditions=[condition(system, code, verification="refuted")])
        assert fired(void, gap) is not None
        assert fired(refuted, gap) is not None
    assert fired(chart, gap) is None


NOT_COUNTING = {
    "cvx": ["not-done", "entered-in-error"],
    "loinc": ["preliminary", "registered", "cancelled", "entered-in-error"],
    "snomed": ["not-done", "entered-in-error", "in-progress", "stopped"],
    "cpt": ["not-done", "entered-in-error"],
    "hcpcs": ["not-done", "entered-in-error"],
}


@pytest.mark.parametrize(("gap", "group", "system", "code"), list(group_cases()))
def test_records_that_were_not_done_do_not_count(
    gap: CareGap, group: EvidenceGroup, system: CodeSystem, code: str
) -> None:
    for status in NOT_COUNTING[system]:
        records = [
            record(system, code, day, status=status) for day in dose_days(group, inside_day(group))
        ]
        chart = make_chart(eligible_patient(gap, group), records, required_conditions(gap))
        assert fired(chart, gap) is not None, status


# --------------------------------------------------------------------------- gaps: specifics


def _gap_by_id(gap_id: str) -> CareGap:
    return next(gap for gap in GAPS if gap.id == gap_id)


FLU = _gap_by_id("gap:influenza-vaccine")
TD = _gap_by_id("gap:td-tdap-booster")
COLORECTAL = _gap_by_id("gap:colorectal-cancer-screening")
CERVICAL = _gap_by_id("gap:cervical-cancer-screening")
HBA1C_GAP = _gap_by_id("gap:diabetes-hba1c-monitoring")


@pytest.mark.parametrize(
    ("today", "dose", "fires"),
    [
        (dt.date(2025, 8, 1), dt.date(2025, 8, 1), False),
        (dt.date(2025, 8, 1), dt.date(2025, 7, 31), True),
        (dt.date(2025, 7, 31), dt.date(2024, 8, 1), False),
        (dt.date(2025, 7, 31), dt.date(2024, 7, 31), True),
        (dt.date(2026, 1, 10), dt.date(2025, 9, 30), False),
    ],
)
def test_influenza_season_starts_on_1_august(today: dt.date, dose: dt.date, fires: bool) -> None:
    chart = make_chart(patient(age_months=40 * 12, today=today), [record("cvx", "150", dose)])
    assert (fired(chart, FLU, today=today) is not None) is fires


def test_cvx_codes_match_with_or_without_a_leading_zero() -> None:
    pat = patient(age_months=40 * 12)
    for code in ("09", "9"):
        assert fired(make_chart(pat, [record("cvx", code, dt.date(2020, 1, 1))]), TD) is None


def test_subpotent_dose_does_not_count() -> None:
    system, resource = record("cvx", "150", dt.date(2024, 10, 1))
    resource["isSubpotent"] = True
    assert fired(make_chart(patient(age_months=40 * 12), [(system, resource)]), FLU) is not None


def test_undated_and_partially_dated_records() -> None:
    pat = patient(age_months=50 * 12)
    system, undated = record("snomed", "73761001", "2020-01-01")
    del undated["performedDateTime"]
    assert fired(make_chart(pat, [(system, undated)]), COLORECTAL) is not None
    # A partial date counts as its earliest day: "2015" = 2015-01-01, ten years ended 2025-01-01.
    assert fired(make_chart(pat, [record("snomed", "73761001", "2015")]), COLORECTAL) is not None
    assert fired(make_chart(pat, [record("snomed", "73761001", "2015-04")]), COLORECTAL) is None
    # performedPeriod.start and a full date-time are read too.
    _, period = record("snomed", "73761001", "2020-01-01")
    period["performedPeriod"] = {"start": period.pop("performedDateTime") + "T09:00:00+02:00"}
    assert fired(make_chart(pat, [("procedures", period)]), COLORECTAL) is None


def test_observation_dates_from_period_or_issued() -> None:
    pat = patient(age_months=50 * 12)
    _, by_period = record("loinc", "57905-2", "2025-01-01")
    by_period["effectivePeriod"] = {"start": by_period.pop("effectiveDateTime")}
    assert fired(make_chart(pat, [("observations", by_period)]), COLORECTAL) is None
    _, by_issued = record("loinc", "57905-2", "2025-01-01")
    by_issued["issued"] = by_issued.pop("effectiveDateTime") + "T10:00:00Z"
    assert fired(make_chart(pat, [("observations", by_issued)]), COLORECTAL) is None


@pytest.mark.parametrize(
    ("birth", "fires"),
    [
        ("1980", False),  # may be 1980-12-31: 44 on 2025-03-15
        ("1979", True),
        ("1980-03", False),  # may be 1980-03-31
        ("1980-02", True),  # at the latest 1980-02-29
        ("1980-03-15", True),
        ("1980-03-16", False),
    ],
)
def test_partial_birth_date_gives_the_youngest_possible_age(birth: str, fires: bool) -> None:
    pat = {"resourceType": "Patient", "id": PATIENT_ID, "birthDate": birth, "gender": "male"}
    assert (fired(make_chart(pat), COLORECTAL) is not None) is fires


def test_hrhpv_counts_from_30_and_cytology_from_21() -> None:
    hpv = record("loinc", "30167-1", dt.date(2023, 1, 1))
    assert fired(make_chart(patient(age_months=30 * 12), [hpv]), CERVICAL) is None
    assert fired(make_chart(patient(age_months=29 * 12), [hpv]), CERVICAL) is not None


def test_diabetes_monitoring_needs_an_active_diabetes_condition() -> None:
    pat = patient(age_months=50 * 12)
    assert fired(make_chart(pat), HBA1C_GAP) is None
    codes = KNOWLEDGE.condition_set("cond:diabetes").codes
    variants = [condition(system, code) for system, code in codes.items()]
    variants += [condition("icd10cm", f"{prefix}.65") for prefix in codes.icd10cm_prefixes]
    variants += [condition("icd10cm", "E119")]  # no dot
    for active in variants:
        assert fired(make_chart(pat, conditions=[active]), HBA1C_GAP) is not None, active
    for inactive in (
        condition("snomed", "44054006", clinical="resolved"),
        condition("snomed", "44054006", clinical="inactive"),
        condition("snomed", "44054006", verification="refuted"),
        condition("snomed", "44054006", verification="entered-in-error"),
        condition("icd10cm", "E14.9"),
        condition("icd10cm", "O24.4"),
    ):
        assert fired(make_chart(pat, conditions=[inactive]), HBA1C_GAP) is None, inactive


def test_code_system_oids_are_accepted() -> None:
    pat = patient(age_months=50 * 12)
    _, resource = record("snomed", "73761001", dt.date(2020, 1, 1))
    resource["code"]["coding"][0]["system"] = "urn:oid:2.16.840.1.113883.6.96"
    assert fired(make_chart(pat, [("procedures", resource)]), COLORECTAL) is None


def test_a_code_from_another_system_does_not_match() -> None:
    pat = patient(age_months=50 * 12)
    _, resource = record("snomed", "73761001", dt.date(2020, 1, 1))
    resource["code"]["coding"][0]["system"] = "http://example.org/local"
    assert fired(make_chart(pat, [("procedures", resource)]), COLORECTAL) is not None


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


@pytest.mark.parametrize(
    ("systolic", "diastolic", "indicator"),
    [
        (180, 80, "critical"),
        (179, 80, "warning"),
        (130, 120, "critical"),
        (130, 119, "warning"),
        (140, 80, "warning"),
        (139, 89, None),
        (130, 90, "warning"),
        (139.9, 89.9, None),
        (210, 130, "critical"),
        (100, 60, None),
    ],
)
def test_blood_pressure_thresholds(
    systolic: float, diastolic: float, indicator: str | None
) -> None:
    for records in (
        [bp_panel(systolic, diastolic)],
        [single("8480-6", systolic, "mm[Hg]"), single("8462-4", diastolic, "mm[Hg]")],
        [bp_panel(systolic, diastolic, code="55284-4")],
    ):
        issued = result_card(make_chart(ADULT, records), BP)
        assert (None if issued is None else issued.card.indicator) == indicator
        if issued is not None:
            assert issued.rule_id == BP.id
            assert f"{systolic:g}/{diastolic:g} mmHg on 2025-03-01" in issued.card.summary
            assert issued.card.suggestions is None


def test_blood_pressure_one_component_is_enough() -> None:
    issued = result_card(make_chart(ADULT, [single("8462-4", 121, "mmHg")]), BP)
    assert issued is not None
    assert issued.card.indicator == "critical"
    assert "?/121 mmHg" in issued.card.summary


def test_blood_pressure_most_recent_reading_wins() -> None:
    high_then_normal = [
        bp_panel(185, 100, "2025-01-01T08:00:00Z"),
        bp_panel(120, 70, "2025-02-01T08:00:00Z"),
    ]
    assert result_card(make_chart(ADULT, high_then_normal), BP) is None
    normal_then_high = [
        bp_panel(120, 70, "2025-01-01T08:00:00Z"),
        bp_panel(150, 70, "2025-02-01T08:00:00Z"),
    ]
    issued = result_card(make_chart(ADULT, normal_then_high), BP)
    assert issued is not None
    assert issued.card.indicator == "warning"
    # Same day: the later time wins; the order of the list does not matter.
    same_day = [
        bp_panel(150, 70, "2025-02-01T16:00:00+02:00"),  # 14:00Z
        bp_panel(120, 70, "2025-02-01T15:00:00Z"),
    ]
    assert result_card(make_chart(ADULT, same_day), BP) is None
    assert result_card(make_chart(ADULT, list(reversed(same_day))), BP) is None


def test_blood_pressure_standalone_newer_than_panel() -> None:
    records = [
        bp_panel(120, 70, "2025-01-01T08:00:00Z"),
        single("8480-6", 182, "mm[Hg]", "2025-02-01T08:00:00Z"),
    ]
    issued = result_card(make_chart(ADULT, records), BP)
    assert issued is not None
    assert issued.card.indicator == "critical"
    assert "182/? mmHg" in issued.card.summary


def test_old_measurement_is_ignored() -> None:
    oldest_counted = add_months(TODAY, -BP.max_age_months) + dt.timedelta(days=1)
    too_old = add_months(TODAY, -BP.max_age_months)
    assert result_card(make_chart(ADULT, [bp_panel(190, 100, oldest_counted.isoformat())]), BP)
    assert result_card(make_chart(ADULT, [bp_panel(190, 100, too_old.isoformat())]), BP) is None


@pytest.mark.parametrize("unit", ["kPa", "mm", "cm[H2O]"])
def test_blood_pressure_in_other_units_is_ignored(unit: str) -> None:
    assert result_card(make_chart(ADULT, [bp_panel(190, 125, unit=unit)]), BP) is None


def test_blood_pressure_unit_without_ucum_code() -> None:
    _, resource = bp_panel(190, 100)
    for component in resource["component"]:
        component["valueQuantity"] = {"value": component["valueQuantity"]["value"], "unit": "mmHg"}
    issued = result_card(make_chart(ADULT, [("observations", resource)]), BP)
    assert issued is not None
    assert issued.card.indicator == "critical"


@pytest.mark.parametrize("status", ["preliminary", "entered-in-error", "cancelled", "registered"])
def test_blood_pressure_status_must_be_final(status: str) -> None:
    assert result_card(make_chart(ADULT, [bp_panel(190, 125, status=status)]), BP) is None
    for ok in ("final", "amended", "corrected"):
        assert result_card(make_chart(ADULT, [bp_panel(190, 125, status=ok)]), BP) is not None


def test_blood_pressure_rule_is_for_adults() -> None:
    child = patient(age_months=17 * 12 + 11, sex="male")
    assert result_card(make_chart(child, [bp_panel(190, 125)]), BP) is None
    adult = patient(age_months=18 * 12, sex="male")
    assert result_card(make_chart(adult, [bp_panel(190, 125)]), BP) is not None


def test_a_non_numeric_or_absent_value_is_ignored() -> None:
    _, resource = single("8480-6", 190, "mm[Hg]")
    resource["valueQuantity"]["value"] = "190"
    assert result_card(make_chart(ADULT, [("observations", resource)]), BP) is None
    _, absent = single("8480-6", 190, "mm[Hg]")
    del absent["valueQuantity"]
    absent["dataAbsentReason"] = {"coding": [{"code": "error"}]}
    assert result_card(make_chart(ADULT, [("observations", absent)]), BP) is None


@pytest.mark.parametrize(
    ("value", "indicator"),
    [(9.1, "warning"), (9.0, "info"), (12.0, "warning"), (7.0, "info"), (6.9, None), (5.4, None)],
)
@pytest.mark.parametrize("code", ["4548-4", "17856-6", "4549-2"])
def test_hba1c_thresholds(value: float, indicator: str | None, code: str) -> None:
    issued = result_card(make_chart(ADULT, [single(code, value, "%")]), A1C)
    assert (None if issued is None else issued.card.indicator) == indicator
    if issued is not None:
        assert issued.card.summary.startswith(f"HbA1c {value:g} % on 2025-03-01")


@pytest.mark.parametrize("unit", ["mmol/mol", "mg/dL", "{ratio}"])
def test_hba1c_in_other_units_is_ignored(unit: str) -> None:
    assert result_card(make_chart(ADULT, [single("4548-4", 75, unit)]), A1C) is None


def test_hba1c_most_recent_and_age_of_result() -> None:
    records = [
        single("4548-4", 10.2, "%", "2024-10-01"),
        single("4548-4", 6.5, "%", "2025-02-01"),
    ]
    assert result_card(make_chart(ADULT, records), A1C) is None
    old = add_months(TODAY, -A1C.max_age_months).isoformat()
    assert result_card(make_chart(ADULT, [single("4548-4", 10.2, "%", old)]), A1C) is None


def test_encounter_start_leaves_out_result_cards() -> None:
    chart = make_chart(
        ADULT,
        [bp_panel(190, 125), single("4548-4", 10.0, "%")],
        [condition("snomed", "44054006")],
    )
    viewed = {item.rule_id for item in care_gap_cards(chart, today=TODAY, hook="patient-view")}
    started = {item.rule_id for item in care_gap_cards(chart, today=TODAY, hook="encounter-start")}
    assert {"result:blood-pressure", "result:hba1c"} <= viewed
    assert not any(rule.startswith("result:") for rule in started)
    assert started == viewed - {"result:blood-pressure", "result:hba1c"}
    assert started  # the gaps are still there


# --------------------------------------------------------------------------- whole cards


@pytest.mark.parametrize(
    "extra",
    [{"deceasedBoolean": True}, {"deceasedDateTime": "2025-01-01"}],
)
def test_deceased_patient_gets_no_cards(extra: dict[str, Any]) -> None:
    pat = patient(age_months=70 * 12, **extra)
    chart = make_chart(pat, [bp_panel(200, 130)], [condition("snomed", "44054006")])
    assert care_gap_cards(chart, today=TODAY, hook="patient-view") == []
    alive = patient(age_months=70 * 12, deceasedBoolean=False)
    assert care_gap_cards(make_chart(alive), today=TODAY, hook="patient-view")


def test_patient_without_id_is_refused() -> None:
    chart = make_chart({"resourceType": "Patient", "birthDate": "1960-01-01"})
    with pytest.raises(ValueError, match="no id"):
        care_gap_cards(chart, today=TODAY, hook="patient-view")


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


def test_every_rule_is_covered_by_the_card_checks() -> None:
    produced = {item.rule_id for item in all_cards()}
    assert produced == set(GAP_IDS) | {rule.id for rule in KNOWLEDGE.results}


def test_every_card_is_valid() -> None:
    issued = all_cards()
    uuids: set[str] = set()
    for item in issued:
        card = item.card
        wire = card.model_dump(mode="json", by_alias=True, exclude_none=True)
        again = Card.model_validate(wire)
        assert again.summary == card.summary
        assert len(card.summary) <= SUMMARY_MAX_CHARS < 140
        assert card.uuid is not None
        assert card.uuid not in uuids
        uuids.add(card.uuid)
        assert card.detail
        assert card.source.label == SOURCE_LABEL
        assert card.source.topic is not None
        assert card.source.topic.system == CARE_GAP_TOPIC_SYSTEM
        assert card.source.topic.code == item.rule_id
        assert str(card.source.url).startswith("https://")
        assert card.links
        assert all(link.type == "absolute" for link in card.links)
        assert all(str(link.url).startswith("https://") for link in card.links)
        assert item.fingerprint == fingerprint_of(PATIENT_ID, item.rule_id)
        if item.rule_id.startswith("result:"):
            assert card.indicator in ("warning", "critical", "info")
            assert card.suggestions is None
        else:
            assert card.indicator == "info"
        gap = next((gap for gap in GAPS if gap.id == item.rule_id), None)
        if gap is not None and gap.order is not None:
            assert card.selection_behavior == "at-most-one"
            assert card.suggestions is not None
            assert len(card.suggestions) == 1
            suggestion = card.suggestions[0]
            assert suggestion.label == gap.order.label
            assert suggestion.is_recommended is True
            assert suggestion.uuid
            assert suggestion.actions is not None
            assert len(suggestion.actions) == 1
            action = suggestion.actions[0]
            assert action.type == "create"
            assert action.description
            resource = action.resource
            assert resource is not None
            assert resource["resourceType"] == "ServiceRequest"
            assert resource["status"] == "draft"
            assert resource["intent"] == "proposal"
            assert resource["subject"] == {"reference": f"Patient/{PATIENT_ID}"}
            coding = resource["code"]["coding"][0]
            assert coding == {
                "system": CODE_SYSTEM_URIS[gap.order.code.system],
                "code": gap.order.code.code,
                "display": gap.order.code.display,
            }
        elif gap is not None:
            assert card.suggestions is None
            assert card.selection_behavior is None


def test_incomplete_chart_is_said_in_every_card() -> None:
    first = next(busy_charts())
    for item in care_gap_cards(first, today=TODAY, hook="patient-view"):
        assert "could not be read" in (item.card.detail or "")
    complete = make_chart(patient(age_months=66 * 12, sex="male"))
    for item in care_gap_cards(complete, today=TODAY, hook="patient-view"):
        assert "could not be read" not in (item.card.detail or "")


def test_order_is_critical_warning_info_then_id() -> None:
    for chart in busy_charts():
        issued = care_gap_cards(chart, today=TODAY, hook="patient-view")
        rank = {"critical": 0, "warning": 1, "info": 2}
        keys = [(rank[item.card.indicator], item.rule_id) for item in issued]
        assert keys == sorted(keys)
    first = care_gap_cards(next(busy_charts()), today=TODAY, hook="patient-view")
    assert [item.card.indicator for item in first][:2] == ["critical", "warning"]


def test_no_free_text_from_the_record_reaches_a_card() -> None:
    marker = "SECRET-NOTE-TEXT"
    pat = patient(age_months=66 * 12, sex="male", text={"div": marker})
    records = [bp_panel(190, 100), record("cvx", "115", dt.date(2010, 1, 1))]
    for _, resource in records:
        resource["note"] = [{"text": marker}]
        resource["text"] = {"status": "generated", "div": marker}
        for coding in resource.get("code", resource.get("vaccineCode", {}))["coding"]:
            coding["display"] = marker
    diabetes = condition("snomed", "44054006")
    diabetes["code"]["text"] = marker
    diabetes["note"] = [{"text": marker}]
    issued = care_gap_cards(make_chart(pat, records, [diabetes]), today=TODAY, hook="patient-view")
    assert issued
    dumped = json.dumps(
        [item.card.model_dump(mode="json", by_alias=True, exclude_none=True) for item in issued]
    )
    assert marker not in dumped


def test_results_are_deterministic_apart_from_uuids() -> None:
    def stable(items: list[IssuedCard]) -> list[tuple[str, str, str]]:
        return [(item.rule_id, item.card.summary, item.fingerprint) for item in items]

    chart = next(busy_charts())
    assert stable(care_gap_cards(chart, today=TODAY, hook="patient-view")) == stable(
        care_gap_cards(chart, today=TODAY, hook="patient-view")
    )
