"""The results module's rules without a server: LOINC check digits, UCUM conversion through
ucumvert, the cited critical-value table, interpretation flags, the portal release rule and
the policy overrides' checks."""

from __future__ import annotations

import datetime as dt

import pytest

from ehr.core.errors import RequestValidationFailed
from ehr.modules.clinical_record import InvalidCode, UnknownCodeSystem
from ehr.modules.results.codes import check_loinc, is_loinc_code, loinc_check_digit
from ehr.modules.results.critical import (
    CriticalLimit,
    CriticalTable,
    critical_flag,
    shipped_limits,
    shipped_sources,
)
from ehr.modules.results.interpretation import judge
from ehr.modules.results.policy import TenantResultPolicy, check_overrides
from ehr.modules.results.schemas import ObservationIn, ResultPolicyIn, ResultRecord
from ehr.modules.results.service import released, report_key
from ehr.modules.results.units import UnitNotAllowed, check_unit, convert, same_dimension

NOW = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        ("2823-3", True),
        ("2345-7", True),
        ("718-7", True),
        ("6301-6", True),
        ("2823-4", False),
        ("2823", False),
        ("12345678-1", False),
        ("ab-1", False),
    ],
)
def test_loinc_check_digit(code: str, valid: bool) -> None:
    assert is_loinc_code(code) is valid


def test_loinc_check_digit_is_luhn() -> None:
    assert loinc_check_digit("2951") == 2
    assert loinc_check_digit("89579") == 7


def test_check_loinc_refuses_other_systems_and_typos() -> None:
    with pytest.raises(UnknownCodeSystem):
        check_loinc("2823-3", system="http://snomed.info/sct")
    with pytest.raises(InvalidCode) as refused:
        check_loinc("2823-9")
    assert refused.value.code == "invalid_code"


def test_every_shipped_row_is_a_valid_loinc_with_a_ucum_unit_and_a_citation() -> None:
    limits = shipped_limits()
    sources = shipped_sources()
    assert {"2823-3", "2951-2", "2345-7", "718-7", "777-3", "6301-6", "89579-7"} <= set(limits)
    for code, row in limits.items():
        assert is_loinc_code(code), code
        check_unit(row.unit)
        assert row.low is not None or row.high is not None
        for key in row.source.split(","):
            assert key.strip() in sources, (code, key)


def test_shipped_limits_are_the_published_ones() -> None:
    potassium = shipped_limits()["2823-3"]
    assert (potassium.low, potassium.high, potassium.unit) == (2.8, 6.2, "mmol/L")
    glucose = shipped_limits()["2345-7"]
    assert (glucose.low, glucose.high, glucose.unit) == (40, 450, "mg/dL")
    assert shipped_limits()["6301-6"].high == 5.0


def test_ucum_conversions() -> None:
    assert convert(20, "10*3/uL", "10*9/L") == pytest.approx(20)
    assert convert(70, "g/L", "g/dL") == pytest.approx(7)
    assert convert(0.03, "ng/mL", "ng/L") == pytest.approx(30)
    assert convert(3.1, "{INR}", "{INR}") == 3.1
    assert same_dimension("{INR}", "1")
    assert not same_dimension("mg/dL", "mmol/L")
    with pytest.raises(UnitNotAllowed):
        convert(5, "mg/dL", "mmol/L")
    with pytest.raises(UnitNotAllowed) as refused:
        check_unit("mEq/L")
    assert refused.value.code == "unit_not_allowed"


def test_critical_flags_are_strict_and_compare_after_conversion() -> None:
    potassium = shipped_limits()["2823-3"]
    assert critical_flag(2.7, "mmol/L", potassium) == "LL"
    assert critical_flag(2.8, "mmol/L", potassium) is None
    assert critical_flag(6.3, "mmol/L", potassium) == "HH"
    assert critical_flag(6300, "umol/L", potassium) == "HH"
    hemoglobin = shipped_limits()["718-7"]
    assert critical_flag(65, "g/L", hemoglobin) == "LL"
    assert critical_flag(75, "g/L", hemoglobin) is None


def _numeric(code: str, value: float, unit: str, **extra: object) -> ObservationIn:
    return ObservationIn.model_validate(
        {"code": code, "quantity": {"value": value, "unit": unit}, **extra}
    )


def test_interpretation_from_ranges() -> None:
    table = CriticalTable()
    normal = {"reference_range": {"low": 3.5, "high": 5.1}}
    assert (
        judge(_numeric("2823-3", 4.0, "mmol/L", **normal), table, field="o").interpretation == "N"
    )
    assert (
        judge(_numeric("2823-3", 3.2, "mmol/L", **normal), table, field="o").interpretation == "L"
    )
    assert (
        judge(_numeric("2823-3", 5.6, "mmol/L", **normal), table, field="o").interpretation == "H"
    )
    critical = judge(_numeric("2823-3", 6.8, "mmol/L", **normal), table, field="o")
    assert critical.interpretation == "HH"
    assert critical.critical
    assert judge(_numeric("2823-3", 4.0, "mmol/L"), table, field="o").interpretation is None
    coded = ObservationIn.model_validate(
        {
            "code": "600-7",
            "coded": {"system": "http://snomed.info/sct", "code": "10828004"},
            "critical": True,
        }
    )
    assert judge(coded, table, field="o").interpretation == "AA"
    abnormal = ObservationIn.model_validate({"code": "5778-6", "text": "Cloudy", "abnormal": True})
    assert judge(abnormal, table, field="o").interpretation == "A"


def test_a_unit_of_another_kind_is_refused_for_a_listed_code() -> None:
    with pytest.raises(UnitNotAllowed) as refused:
        judge(_numeric("2823-3", 18, "mg/dL"), CriticalTable(), field="observations[0]")
    assert refused.value.extra["expected_unit"] == "mmol/L"


def test_tenant_override_replaces_the_shipped_row() -> None:
    table = CriticalTable({"2823-3": CriticalLimit("2823-3", "mmol/L", 3.0, 6.0)})
    assert judge(_numeric("2823-3", 2.9, "mmol/L"), table, field="o").interpretation == "LL"
    assert table.limit_of("2823-3") is not None
    assert table.limit_of("2823-3").source == "tenant"  # type: ignore[union-attr]


def test_observation_takes_exactly_one_value() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ObservationIn.model_validate({"code": "2823-3"})
    with pytest.raises(ValueError, match="not by abnormal"):
        ObservationIn.model_validate(
            {"code": "2823-3", "quantity": {"value": 1, "unit": "mmol/L"}, "critical": True}
        )


def test_override_checks() -> None:
    ok = ResultPolicyIn.model_validate(
        {"critical_overrides": [{"loinc": "2823-3", "unit": "mmol/L", "low": 3.0, "high": 6.0}]}
    )
    assert check_overrides(ok) == {"2823-3": {"unit": "mmol/L", "low": 3.0, "high": 6.0}}
    wrong_kind = ResultPolicyIn.model_validate(
        {"critical_overrides": [{"loinc": "2823-3", "unit": "mg/dL", "low": 10}]}
    )
    with pytest.raises(UnitNotAllowed):
        check_overrides(wrong_kind)
    typo = ResultPolicyIn.model_validate(
        {"critical_overrides": [{"loinc": "2823-4", "unit": "mmol/L", "low": 3}]}
    )
    with pytest.raises(RequestValidationFailed):
        check_overrides(typo)


def _report(status: str, issued: dt.datetime | None) -> dict[str, object]:
    report: dict[str, object] = {"resourceType": "DiagnosticReport", "id": "r1", "status": status}
    if issued is not None:
        report["issued"] = issued.strftime("%Y-%m-%dT%H:%M:%SZ")
    return report


def test_release_rule_for_patients() -> None:
    delay = TenantResultPolicy(patient_release_hours=2).release_delay
    hour_ago = NOW - dt.timedelta(hours=1)
    assert released(_report("final", hour_ago), None, now=NOW, delay=dt.timedelta(0))
    assert not released(_report("final", hour_ago), None, now=NOW, delay=delay)
    assert released(_report("final", NOW - dt.timedelta(hours=3)), None, now=NOW, delay=delay)
    assert not released(_report("preliminary", hour_ago), None, now=NOW, delay=dt.timedelta(0))
    open_task = {"resourceType": "Task", "status": "requested"}
    done_task = {"resourceType": "Task", "status": "completed"}
    assert not released(_report("final", hour_ago), open_task, now=NOW, delay=dt.timedelta(0))
    assert released(_report("final", hour_ago), done_task, now=NOW, delay=dt.timedelta(0))


def test_report_order_is_newest_first_then_id() -> None:
    older = {"id": "b", "effectiveDateTime": "2026-12-01T08:00:00Z"}
    newer = {"id": "a", "effectiveDateTime": "2026-12-02T08:00:00Z"}
    same = {"id": "c", "effectiveDateTime": "2026-12-02T08:00:00Z"}
    assert sorted([older, same, newer], key=report_key) == [newer, same, older]


@pytest.mark.parametrize("given", ["ServiceRequest-abc-1", "abc-1"])
def test_a_result_names_its_order_as_the_orders_api_does_or_by_fhir_id(given: str) -> None:
    record = ResultRecord.model_validate(
        {
            "order_id": given,
            "code": "24323-8",
            "effective": "2026-12-07T06:30:00Z",
            "observations": [{"code": "2823-3", "quantity": {"value": 4.1, "unit": "mmol/L"}}],
        }
    )
    assert record.order_id == "abc-1"
