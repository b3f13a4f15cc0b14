"""Care gaps, generated from the shipped ``data/care_gaps.yaml``.

Every gap is exercised: it fires for an eligible patient with nothing on record; each evidence
group (each code system it lists, and every listed code) closes it inside its look-back and no
longer just outside; age bounds (both sides), sex, exclusions, statuses that do not count; then
the specifics (influenza season, CVX zeros, partial dates, OIDs, the diabetes condition).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from support.care_gaps import (
    GAP_IDS,
    GAPS,
    KNOWLEDGE,
    PATIENT_ID,
    condition,
    dose_days,
    eligible_age_months,
    eligible_patient,
    evidence_for,
    exclusion_cases,
    fired,
    group_cases,
    inside_day,
    make_chart,
    outside_day,
    patient,
    record,
    required_conditions,
    windowed_group_cases,
)

from ehr.modules.care_gaps.codes import CodeSystem
from ehr.modules.care_gaps.knowledge import CareGap, EvidenceGroup, Exclusion

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
