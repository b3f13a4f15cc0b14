"""Dose-range checks of high-alert medications: generated from the shipped knowledge base's dose
limits (every limit at, above and beside its bounds) and worked examples as prescriptions are
written (products, tablets, millilitres, weekly methotrexate, per-kg anticoagulants, PRN)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import pytest

from ehr.modules.medication_safety.dosing import dosage_from_fhir, strengths, weight_kg
from ehr.modules.medication_safety.engine import check
from ehr.modules.medication_safety.issues import (
    CheckResult,
    Coding,
    Dosage,
    DoseQuantity,
    IssueCategory,
    MedicationInput,
    PatientContext,
)
from ehr.modules.medication_safety.knowledge import (
    RXNORM_SYSTEM,
    CompiledDoseLimit,
    KnowledgeBase,
    load_knowledge_base,
    load_resolver,
)

NOT_CHECKED = "MS-DOSE-NOT-CHECKED"


@cache
def _kb() -> KnowledgeBase:
    return load_knowledge_base()


def _limits() -> list[CompiledDoseLimit]:
    return list(_kb().dose_limits.values())


def _run(
    code: str, dosage: Dosage | None, weight: float | None = 70.0, label: str = "the order"
) -> CheckResult:
    med = MedicationInput(
        "rx-1", label, (Coding(RXNORM_SYSTEM, code),), dosage=dosage, reference="MR/rx-1"
    )
    return check(
        [med],
        [],
        [],
        PatientContext(age_years=50, weight_kg=weight),
        kb=_kb(),
        resolver=load_resolver(),
    )


def _dose_rules(result: CheckResult) -> list[str]:
    return sorted(i.rule_id for i in result.issues if i.category is IssueCategory.DOSE_RANGE)


def _per_day(limit: CompiledDoseLimit, single: float) -> float:
    """Administrations a day that keep ``single`` within every daily/weekly bound."""
    bounds = [1.0]
    if limit.max_daily is not None:
        bounds.append(limit.max_daily / single)
    if limit.max_weekly is not None:
        bounds.append(limit.max_weekly / 7 / single)
    if limit.max_administrations_per_week is not None:
        bounds.append(limit.max_administrations_per_week / 7)
    return min(bounds)


def _single(limit: CompiledDoseLimit) -> float:
    caps = [v for v in (limit.max_single, limit.max_daily, limit.max_weekly) if v is not None]
    return min(caps) if caps else 1.0


def _weight(limit: CompiledDoseLimit) -> float:
    return 70.0 if limit.per_kg else 1.0


def test_the_kb_has_dose_limits_for_high_alert_drugs() -> None:
    names = {limit.ingredient.name for limit in _limits()}
    for drug in ("apixaban", "enoxaparin", "methotrexate", "colchicine", "digoxin"):
        assert drug in names
    assert "potassium chloride" in names


@pytest.mark.parametrize("limit", _limits(), ids=lambda limit: limit.id)
def test_a_dose_within_the_limit_is_not_flagged(limit: CompiledDoseLimit) -> None:
    single = _single(limit)
    amount = single * _weight(limit)
    dosage = Dosage(DoseQuantity(amount, limit.unit), per_day=_per_day(limit, single))
    result = _run(limit.ingredient.rxcui, dosage)
    assert limit.id not in _dose_rules(result)
    assert NOT_CHECKED not in _dose_rules(result)
    statuses = {item.dose for item in result.items}
    assert statuses <= {"within-limits", "flagged"}  # another limit of the drug may fire


@pytest.mark.parametrize(
    "limit",
    [limit for limit in _limits() if limit.max_single is not None],
    ids=lambda limit: limit.id,
)
def test_a_single_dose_above_the_maximum_is_flagged(limit: CompiledDoseLimit) -> None:
    assert limit.max_single is not None
    amount = limit.max_single * 1.5 * _weight(limit)
    result = _run(limit.ingredient.rxcui, Dosage(DoseQuantity(amount, limit.unit), per_day=None))
    assert limit.id in _dose_rules(result)
    issue = next(i for i in result.issues if i.rule_id == limit.id)
    assert issue.severity is limit.severity
    assert issue.title.startswith("Dose too high")
    assert "maximum single dose" in issue.title
    assert result.items[0].dose == "flagged"


@pytest.mark.parametrize(
    "limit",
    [limit for limit in _limits() if limit.max_daily is not None],
    ids=lambda limit: limit.id,
)
def test_a_day_above_the_maximum_is_flagged_through_the_frequency(
    limit: CompiledDoseLimit,
) -> None:
    assert limit.max_daily is not None
    single = min(limit.max_single or limit.max_daily, limit.max_daily) / 2
    per_day = 3 * limit.max_daily / single  # 1.5 x the daily maximum... and more
    result = _run(
        limit.ingredient.rxcui,
        Dosage(DoseQuantity(single * _weight(limit), limit.unit), per_day=per_day),
    )
    issue = next(i for i in result.issues if i.rule_id == limit.id)
    assert "maximum daily dose" in issue.title


@pytest.mark.parametrize(
    "limit", [limit for limit in _limits() if limit.per_kg], ids=lambda limit: limit.id
)
def test_a_per_kg_limit_without_a_weight_is_not_checked(limit: CompiledDoseLimit) -> None:
    dosage = Dosage(DoseQuantity(_single(limit) * 70, limit.unit), per_day=1)
    result = _run(limit.ingredient.rxcui, dosage, weight=None)
    assert NOT_CHECKED in _dose_rules(result)
    note = next(i for i in result.issues if i.rule_id == NOT_CHECKED)
    assert "no body weight" in (note.consequence or "")
    assert not result.interruptive or any(
        i.rule_id not in (NOT_CHECKED, limit.id) for i in result.issues
    )


@pytest.mark.parametrize("limit", _limits(), ids=lambda limit: limit.id)
def test_a_dose_in_a_unit_that_cannot_be_compared_is_not_checked(
    limit: CompiledDoseLimit,
) -> None:
    # A millilitre dose of an ingredient code: no concentration to convert it with (and no
    # timing: how often alone can flag, e.g. methotrexate every day).
    result = _run(limit.ingredient.rxcui, Dosage(DoseQuantity(5, "mL"), per_day=None))
    assert NOT_CHECKED in _dose_rules(result)
    assert limit.id not in _dose_rules(result)
    assert result.items[0].dose == "not-checked"


def test_no_dosage_and_no_limit_are_said_not_flagged() -> None:
    apixaban = next(lim for lim in _limits() if lim.id == "DOSE-APIXABAN")
    assert _run(apixaban.ingredient.rxcui, None).items[0].dose == "no-dosage"
    lisinopril = _run("29046", Dosage(DoseQuantity(10, "mg"), per_day=1))
    assert lisinopril.items[0].dose == "no-limit"
    assert _dose_rules(lisinopril) == []


# ---- Worked examples, coded as prescriptions are -------------------------------------------

METHOTREXATE_TABLET = "105585"  # methotrexate 2.5 MG Oral Tablet
METHOTREXATE_INJECTION = "1946772"  # methotrexate 25 MG/ML Injectable Solution
ENOXAPARIN_40 = "854235"  # 0.4 ML enoxaparin sodium 100 MG/ML Prefilled Syringe
KCL_20 = "198116"  # potassium chloride 20 MEQ Extended Release Oral Tablet
APAP_OXYCODONE = "1049221"  # acetaminophen 325 MG / oxycodone hydrochloride 5 MG Oral Tablet
DIGOXIN_SOLUTION = "393245"  # digoxin 0.05 MG/ML Oral Solution
APIXABAN_5 = "1364445"  # apixaban 5 MG Oral Tablet


def _tabs(count: float, per_day: float | None, unit: str = "{tbl}") -> Dosage:
    return Dosage(DoseQuantity(count, unit), per_day=per_day)


@pytest.mark.parametrize(
    ("code", "dosage", "weight", "expected"),
    [
        # Weekly methotrexate: 2.5 mg every 12 h for 3 doses once a week is labelled ...
        (METHOTREXATE_TABLET, _tabs(1, 3 / 7), 70, []),
        (METHOTREXATE_TABLET, _tabs(6, 1 / 7), 70, []),  # 15 mg once weekly
        # ... the same tablet once daily is the classic fatal error (7 doses a week).
        (METHOTREXATE_TABLET, _tabs(1, 1), 70, ["DOSE-METHOTREXATE"]),
        (METHOTREXATE_TABLET, _tabs(16, 1 / 7), 70, ["DOSE-METHOTREXATE"]),  # 40 mg weekly
        # Injected methotrexate (oncology regimens) is outside the oral weekly limit.
        (METHOTREXATE_INJECTION, _tabs(2, 1, unit="mL"), 70, []),
        # Enoxaparin per kg: 1 mg/kg every 12 h at 80 kg (two 40 mg syringes) ...
        (ENOXAPARIN_40, _tabs(2, 2, unit="{syringe}"), 80, []),
        (ENOXAPARIN_40, Dosage(DoseQuantity(80, "mg"), per_day=2), 80, []),
        # ... 100 mg every 12 h at 45 kg is 2.2 mg/kg a dose.
        (ENOXAPARIN_40, Dosage(DoseQuantity(100, "mg"), per_day=2), 45, ["DOSE-ENOXAPARIN"]),
        # Potassium chloride 20 mEq tablets: 2 every 6 h is 160 mEq a day; 3 at once is 60 mEq.
        (KCL_20, _tabs(2, 4), 70, []),
        (KCL_20, _tabs(3, 1), 70, ["DOSE-POTASSIUM-CHLORIDE"]),
        # Oxycodone/acetaminophen 5/325: 2 tablets every 4 h = 3.9 g acetaminophen a day ...
        (APAP_OXYCODONE, _tabs(2, 6), 70, []),
        # ... every 3 h = 5.2 g.
        (APAP_OXYCODONE, _tabs(2, 8), 70, ["DOSE-ACETAMINOPHEN"]),
        # Digoxin solution in mL, per kg: 5 mL (0.25 mg) daily at 70 kg; 50 mL (2.5 mg) daily.
        (DIGOXIN_SOLUTION, _tabs(5, 1, unit="mL"), 70, []),
        (DIGOXIN_SOLUTION, _tabs(50, 1, unit="mL"), 70, ["DOSE-DIGOXIN"]),
        # Apixaban 5 mg tablets: 2 twice daily (10 mg bid, first week) ok; 2 three times daily.
        (APIXABAN_5, _tabs(2, 2), 70, []),
        (APIXABAN_5, _tabs(2, 3), 70, ["DOSE-APIXABAN"]),
    ],
)
def test_worked_examples(code: str, dosage: Dosage, weight: float, expected: Sequence[str]) -> None:
    result = _run(code, dosage, weight=weight)
    assert [r for r in _dose_rules(result) if r != NOT_CHECKED] == list(expected)
    assert NOT_CHECKED not in _dose_rules(result)


def test_a_mass_dose_of_a_combination_product_is_ambiguous_and_not_checked() -> None:
    result = _run(APAP_OXYCODONE, Dosage(DoseQuantity(10, "mg"), per_day=4))
    assert _dose_rules(result) == [NOT_CHECKED]


def test_prn_uses_the_maximum_per_day_when_given() -> None:
    prn = Dosage(
        DoseQuantity(2, "{tbl}"), per_day=6, as_needed=True, max_per_day=DoseQuantity(12, "{tbl}")
    )
    assert _dose_rules(_run(APAP_OXYCODONE, prn)) == []  # 12 x 325 = 3.9 g
    more = Dosage(
        DoseQuantity(2, "{tbl}"), per_day=6, as_needed=True, max_per_day=DoseQuantity(14, "{tbl}")
    )
    assert _dose_rules(_run(APAP_OXYCODONE, more)) == ["DOSE-ACETAMINOPHEN"]


# ---- Reading FHIR dosages and names ---------------------------------------------------------


def test_fhir_dosage_with_frequency_period_and_timing_codes() -> None:
    weekly = dosage_from_fhir(
        [
            {
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}},
                "doseAndRate": [
                    {"doseQuantity": {"value": 15, "unit": "mg", "system": "u", "code": "mg"}}
                ],
            }
        ]
    )
    assert weekly == Dosage(DoseQuantity(15, "mg"), per_day=1 / 7)
    bid = dosage_from_fhir(
        [
            {
                "timing": {"code": {"coding": [{"code": "BID"}]}},
                "doseAndRate": [{"doseRange": {"high": {"value": 2, "code": "{tbl}"}}}],
                "asNeededBoolean": True,
                "maxDosePerPeriod": {
                    "numerator": {"value": 8, "code": "{tbl}"},
                    "denominator": {"value": 1, "code": "d"},
                },
            }
        ]
    )
    assert bid == Dosage(DoseQuantity(2, "{tbl}"), 2.0, True, DoseQuantity(8, "{tbl}"))
    assert dosage_from_fhir([{"text": "as directed"}]) is None
    assert dosage_from_fhir("not a list") is None
    assert dosage_from_fhir([{"doseAndRate": [{"doseQuantity": {"value": True}}]}]) is None


def test_weights_in_kg_g_and_pounds() -> None:
    def obs(value: float, code: str) -> dict[str, object]:
        return {"valueQuantity": {"value": value, "code": code}}

    assert weight_kg(obs(70, "kg")) == 70
    assert weight_kg(obs(3500, "g")) == pytest.approx(3.5)
    assert weight_kg(obs(154, "[lb_av]")) == pytest.approx(69.85, abs=0.01)
    assert weight_kg(obs(70, "stone")) is None
    assert weight_kg(None) is None


def test_strengths_of_rxnorm_names() -> None:
    (syringe,) = strengths("0.4 ML enoxaparin sodium 100 MG/ML Prefilled Syringe")
    assert (syringe.value, syringe.unit, syringe.per_ml) == (40, "mg", False)
    combo = strengths("acetaminophen 325 MG / oxycodone hydrochloride 5 MG Oral Tablet [Percocet]")
    assert [(s.substance, s.value) for s in combo] == [
        ("acetaminophen", 325),
        ("oxycodone hydrochloride", 5),
    ]
    assert strengths("fentanyl 0.025 MG/HR Transdermal System") == []
    (kcl,) = strengths("24 HR potassium chloride 10 MEQ Extended Release Oral Tablet")
    assert (kcl.value, kcl.unit) == (10, "meq")


def test_absurd_periods_are_not_a_schedule() -> None:
    tiny = [
        {
            "timing": {"repeat": {"frequency": 1, "period": 5e-324, "periodUnit": "h"}},
            "doseAndRate": [{"doseQuantity": {"value": 1, "code": "mg"}}],
        }
    ]
    assert dosage_from_fhir(tiny) == Dosage(DoseQuantity(1, "mg"), per_day=None)
    huge_rate = [
        {
            "maxDosePerPeriod": {
                "numerator": {"value": 1e8, "code": "mg"},
                "denominator": {"value": 1e-300, "code": "s"},
            },
        }
    ]
    assert dosage_from_fhir(huge_rate) is None
