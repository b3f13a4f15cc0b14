"""Result rules (blood pressure, HbA1c): thresholds at their boundaries, the most recent reading,
panel vs standalone, the age of the reading, units, status; and ``encounter-start`` leaves them
out."""

from __future__ import annotations

import datetime as dt

import pytest
from support.care_gaps import (
    A1C,
    ADULT,
    BP,
    TODAY,
    bp_panel,
    condition,
    make_chart,
    patient,
    result_card,
    single,
)

from ehr.modules.care_gaps.dates import add_months
from ehr.modules.cds_hooks.care_gap_cards import care_gap_cards

# --------------------------------------------------------------------------- results


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
