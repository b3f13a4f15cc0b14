"""Dose-range checks: a proposed medication's structured dose against the knowledge base's
adult dose limits of its ingredients (``data/sources/dose-limits.yaml``, the ISMP high-alert
medications).

Amount per administration, in the limit's unit (:func:`amount_per_administration`):
- a dose written as an amount of drug (``mg``, ``g``, ``ug``/``mcg``, ``meq``, ``[iU]``,
  ``mmol``) is that amount of the ingredient — for a single-ingredient product or a code of the
  ingredient itself; for a combination product it is ambiguous and not checked;
- a dose written in units of the product (``{tbl}``, ``{capsule}``, ``1`` …) or in ``mL`` is
  multiplied by the product's strength of that ingredient, read from the RxNorm name
  (``oxycodone hydrochloride 5 MG / acetaminophen 325 MG Oral Tablet``: 5 mg oxycodone and 325 mg
  acetaminophen per tablet; ``0.4 ML enoxaparin sodium 100 MG/ML Prefilled Syringe``: 40 mg per
  syringe; ``… 10 MG/ML Oral Solution`` with a dose in mL);
- per kg of body weight when the limit says so (weight from the patient's latest body-weight
  Observation; none → not checked).

Administrations per day come from the timing (frequency / period, or an HL7 timing code such as
BID, Q6H, WK); a PRN dose's daily amount is its maximum dose per period when given, else the dose
times its frequency. A dose is flagged when an administration exceeds ``max_single``, a day
exceeds ``max_daily``, a week exceeds ``max_weekly``, it is given more often than
``max_administrations_per_week`` (methotrexate taken daily instead of weekly), or a day falls
below ``min_daily``. Anything that cannot be computed is "not checked", never "within limits".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ehr.modules.medication_safety.issues import Dosage, DoseQuantity
from ehr.modules.medication_safety.knowledge import CompiledDoseLimit, Resolution

__all__ = [
    "DoseFinding",
    "administration_of",
    "administrations_per_day",
    "amount_per_administration",
    "dosage_from_fhir",
    "evaluate",
    "strengths",
    "weight_kg",
]

# Amount units, as factors to a base unit within their dimension (mass in mg).
_MASS: Final[Mapping[str, float]] = {"g": 1000.0, "mg": 1.0, "ug": 0.001, "mcg": 0.001}
_OTHER: Final[Mapping[str, str]] = {
    "meq": "meq", "mEq": "meq", "[iU]": "[iU]", "[IU]": "[iU]", "U": "[iU]", "mmol": "mmol",
}  # fmt: skip
_VOLUME: Final[Mapping[str, float]] = {"mL": 1.0, "ml": 1.0, "L": 1000.0}
# Units of the product itself (one tablet, capsule, patch, syringe, …).
_COUNT: Final = frozenset(
    {
        "1", "{tbl}", "{tablet}", "{tablets}", "{tab}", "TAB", "{capsule}", "{capsules}",
        "{cap}", "CAP", "{patch}", "{syringe}", "{each}", "{dose}", "{vial}", "{unit}",
        "{packet}", "{suppository}",
    }
)  # fmt: skip
# RxNorm strength units → UCUM.
_RXNORM_UNITS: Final[Mapping[str, str]] = {
    "MG": "mg", "MCG": "ug", "G": "g", "MEQ": "meq", "UNT": "[iU]", "MMOL": "mmol",
}  # fmt: skip
# Administrations per day of HL7 v3 GTSAbbreviation timing codes.
_TIMING_CODES: Final[Mapping[str, float]] = {
    "QD": 1, "BID": 2, "TID": 3, "QID": 4, "QOD": 0.5, "AM": 1, "PM": 1, "BED": 1,
    "Q1H": 24, "Q2H": 12, "Q3H": 8, "Q4H": 6, "Q6H": 4, "Q8H": 3, "Q12H": 2, "WK": 1 / 7,
    "MO": 1 / 30,
}  # fmt: skip
_PERIOD_DAYS: Final[Mapping[str, float]] = {
    "s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": 30.0, "a": 365.0,
}  # fmt: skip
_MAX: Final = 1e9  # refuse absurd numbers rather than overflow a product
_MAX_PER_DAY: Final = 1e4  # administrations a day beyond this are not a dose schedule


# ---- Reading a FHIR Dosage -------------------------------------------------------------------


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if 0 < number < _MAX else None


def _quantity(node: object) -> DoseQuantity | None:
    if not isinstance(node, Mapping):
        return None
    value = _number(node.get("value"))
    unit = node.get("code") or node.get("unit")
    if value is None or not isinstance(unit, str) or not unit.strip():
        return None
    return DoseQuantity(value, unit.strip())


def _per_day(timing: object) -> float | None:
    if not isinstance(timing, Mapping):
        return None
    repeat = timing.get("repeat")
    if isinstance(repeat, Mapping):
        frequency = _number(repeat.get("frequencyMax")) or _number(repeat.get("frequency")) or 1
        period = _number(repeat.get("period"))
        unit = repeat.get("periodUnit")
        if period is not None and isinstance(unit, str) and unit in _PERIOD_DAYS:
            return administrations_per_day(frequency, period * _PERIOD_DAYS[unit])
    code = timing.get("code")
    codings = code.get("coding") if isinstance(code, Mapping) else None
    for coding in codings if isinstance(codings, list) else []:
        if isinstance(coding, Mapping) and coding.get("code") in _TIMING_CODES:
            return float(_TIMING_CODES[str(coding["code"])])
    return None


def administrations_per_day(times: float, days: float) -> float | None:
    """``times`` per ``days`` as a daily rate; ``None`` when it is not a plausible schedule
    (a period so short the rate overflows or underflows)."""
    if not days > 0:
        return None
    rate = times / days
    return rate if 0 < rate <= _MAX_PER_DAY else None


def _max_per_day(node: object) -> DoseQuantity | None:
    """A maxDosePerPeriod Ratio (amount per time) as an amount per day."""
    if not isinstance(node, Mapping):
        return None
    amount = _quantity(node.get("numerator"))
    period = _quantity(node.get("denominator"))
    if amount is None or period is None or period.unit not in _PERIOD_DAYS:
        return None
    days = period.value * _PERIOD_DAYS[period.unit]
    per_day = administrations_per_day(amount.value, days)
    return None if per_day is None else DoseQuantity(per_day, amount.unit)


def dosage_from_fhir(instructions: object) -> Dosage | None:
    """The first FHIR R4 ``Dosage`` of ``dosageInstruction`` (or ``dosage``) as a :class:`Dosage`
    (``None`` when it carries neither a dose nor a timing)."""
    first = instructions[0] if isinstance(instructions, list) and instructions else None
    if not isinstance(first, Mapping):
        return None
    dose: DoseQuantity | None = None
    rates = first.get("doseAndRate")
    for entry in rates if isinstance(rates, list) else []:
        if not isinstance(entry, Mapping):
            continue
        dose = _quantity(entry.get("doseQuantity"))
        dose_range = entry.get("doseRange")
        if dose is None and isinstance(dose_range, Mapping):
            dose = _quantity(dose_range.get("high"))  # the most that may be given
        if dose is not None:
            break
    per_day = _per_day(first.get("timing"))
    as_needed = bool(first.get("asNeededBoolean")) or "asNeededCodeableConcept" in first
    max_per_day = _max_per_day(first.get("maxDosePerPeriod"))
    if dose is None and per_day is None and max_per_day is None:
        return None
    return Dosage(dose, per_day, as_needed, max_per_day)


def weight_kg(observation: Mapping[str, Any] | None) -> float | None:
    """A body-weight Observation's value in kg (kg, g or [lb_av]; anything else: None)."""
    if not observation:
        return None
    quantity = _quantity(observation.get("valueQuantity"))
    if quantity is None:
        return None
    factor = {"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237, "lb": 0.45359237}.get(quantity.unit)
    return None if factor is None else quantity.value * factor


# ---- Strengths from RxNorm names -------------------------------------------------------------

_BRAND = re.compile(r"\s*\[[^\[\]]*\]\s*$")
_FACTOR = re.compile(r"^(?P<value>[0-9][0-9.]*) (?P<unit>ML|HR|ACTUAT|DAY)\b ?")
_COMPONENT = re.compile(
    r"^(?P<substance>.+?) (?P<value>[0-9][0-9.]*) (?P<unit>[A-Z]+)"
    r"(?:/(?P<per>[0-9.]*)(?P<per_unit>[A-Z]+))?(?: |$)"
)


@dataclass(frozen=True, slots=True)
class Strength:
    substance: str  # lower case, as named (salt included)
    value: float  # amount per unit of product (per mL for a concentration)
    unit: str  # UCUM
    per_ml: bool


def strengths(name: str) -> list[Strength]:
    """The strengths a clinical/branded drug's RxNorm name states, one per component; a leading
    volume (``0.4 ML … 100 MG/ML``) turns a concentration into an amount per unit."""
    text = _BRAND.sub("", name).strip()
    volume: float | None = None
    factor = _FACTOR.match(text)
    if factor is not None:
        if factor.group("unit") == "ML":
            volume = float(factor.group("value"))
        text = text[factor.end() :]
    found: list[Strength] = []
    for part in text.split(" / "):
        match = _COMPONENT.match(part.strip())
        if match is None:
            return []
        unit = _RXNORM_UNITS.get(match.group("unit"))
        if unit is None:
            return []
        value = float(match.group("value"))
        per_unit = match.group("per_unit")
        per_ml = False
        if per_unit is not None:
            if per_unit != "ML":
                return []  # per hour, per actuation, …: not an amount per unit
            per = float(match.group("per") or 1)
            value /= per
            per_ml = volume is None
            if volume is not None:
                value *= volume
        found.append(Strength(match.group("substance").lower(), value, unit, per_ml))
    return found


_PARENTERAL: Final = ("Inject", "Syringe", "Cartridge", "Auto-Injector", "Intravenous")
_ORAL: Final = ("Oral", "Chewable")


def administration_of(products: Sequence[Resolution]) -> str | None:
    """``oral`` / ``parenteral`` from the products' RxNorm dose forms; ``None`` when unknown."""
    for product in products:
        name = _BRAND.sub("", product.name)
        if any(word in name for word in _PARENTERAL):
            return "parenteral"
        if any(word in name for word in _ORAL):
            return "oral"
    return None


def _convert(value: float, unit: str, to: str) -> float | None:
    if unit in _MASS and to in _MASS:
        return value * _MASS[unit] / _MASS[to]
    if _OTHER.get(unit) is not None and _OTHER.get(unit) == _OTHER.get(to, to):
        return value
    return None


def amount_per_administration(
    dose: DoseQuantity,
    ingredient_name: str,
    products: Sequence[Resolution],
    single_ingredient: bool,
    unit: str,
) -> float | None:
    """The amount of the ingredient one administration gives, in ``unit`` (module doc)."""
    if dose.unit in _MASS or dose.unit in _OTHER:
        return _convert(dose.value, dose.unit, unit) if single_ingredient else None
    for product in products:
        found = strengths(product.name)
        for strength in found:
            # The strength of this ingredient: named as the ingredient or one of its salts, or
            # the only strength of a single-ingredient product ("divalproex sodium 500 MG" is
            # valproate's).
            if not (
                strength.substance == ingredient_name
                or strength.substance.startswith(ingredient_name + " ")
                or (single_ingredient and len(found) == 1)
            ):
                continue
            per_unit = _convert(strength.value, strength.unit, unit)
            if per_unit is None:
                return None
            if dose.unit in _COUNT and not strength.per_ml:
                return dose.value * per_unit
            if dose.unit in _VOLUME and strength.per_ml:
                return dose.value * _VOLUME[dose.unit] * per_unit
            return None
    return None


# ---- The check -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DoseFinding:
    """What one dose limit says of one proposed dose: ``flags`` (empty = within the limit) or
    ``not_checked`` with the reason."""

    limit: CompiledDoseLimit
    flags: tuple[str, ...] = ()
    low: bool = False
    not_checked: str | None = None


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def evaluate(
    limit: CompiledDoseLimit,
    dosage: Dosage,
    products: Sequence[Resolution],
    single_ingredient: bool,
    weight: float | None,
) -> DoseFinding:
    """``dosage`` against ``limit`` (see the module doc)."""
    name = limit.ingredient.name
    unit = limit.unit + ("/kg" if limit.per_kg else "")
    per_day = dosage.per_day
    amount: float | None = None
    why: str | None = None
    if dosage.dose is None:
        why = "no dose per administration"
    else:
        amount = amount_per_administration(
            dosage.dose, name, products, single_ingredient, limit.unit
        )
        if amount is None:
            why = f"the dose in {dosage.dose.unit} cannot be expressed in {limit.unit} of {name}"
    if amount is not None and limit.per_kg:
        if weight is None or weight <= 0:
            amount, why = None, "no body weight recorded (the limit is per kg)"
        else:
            amount /= weight
    daily: float | None = None
    if dosage.max_per_day is not None and dosage.as_needed:
        ceiling = amount_per_administration(
            dosage.max_per_day, name, products, single_ingredient, limit.unit
        )
        if ceiling is not None and limit.per_kg:
            ceiling = ceiling / weight if weight else None
        daily = ceiling
    if daily is None and amount is not None and per_day is not None:
        daily = amount * per_day
    per_week = None if per_day is None else per_day * 7
    # (limit, what the order gives, above the limit is the problem?, how to say it)
    bounds: list[tuple[float | None, float | None, bool, str]] = [
        (limit.max_single, amount, True, f"{unit} per dose is above the maximum single dose of"),
        (limit.max_daily, daily, True, f"{unit} a day is above the maximum daily dose of"),
        (
            limit.max_weekly,
            None if daily is None else daily * 7,
            True,
            f"{unit} a week is above the maximum weekly dose of",
        ),
        (
            limit.max_administrations_per_week,
            per_week,
            True,
            "doses a week is more often than the label allows:",
        ),
        (limit.min_daily, daily, False, f"{unit} a day is below the minimum effective dose of"),
    ]
    flags: list[str] = []
    low = False
    checked = False
    for bound, given, upper, wording in bounds:
        if bound is None or given is None:
            continue
        checked = True
        beyond = given > bound * (1 + 1e-9) if upper else given < bound * (1 - 1e-9)
        if beyond:
            low = low or not upper
            suffix = "" if wording.endswith(":") else f" {unit}"
            flags.append(f"{_fmt(given)} {wording} {_fmt(bound)}{suffix}")
    if flags:
        return DoseFinding(limit, tuple(flags), low and len(flags) == 1)
    if not checked:
        return DoseFinding(limit, not_checked=why or "the timing does not say how often")
    return DoseFinding(limit)
