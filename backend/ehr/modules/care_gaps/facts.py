"""A patient's chart as care-gap rules read it: dated, coded records that count as evidence.

What is read from the record: ``Patient.birthDate`` / ``gender`` / ``deceased[x]`` / ``id``, codes,
statuses, dates and numeric values of Immunization, Procedure, Observation and Condition. Never free
text (notes, ``text`` elements, comments).

- Age is the completed age today from ``birthDate``; a partial birth date (``1970``, ``1970-05``)
  gives the youngest possible age. No birth date: no age (rules with age bounds are skipped).
- ``gender`` counts only as ``female``/``male``.
- Deceased patients (``deceasedBoolean`` true, any ``deceasedDateTime``) have no facts (no
  reminders).
- Evidence counts with status ``completed`` (Immunization, not subpotent; Procedure) or
  ``final``/``amended``/``corrected`` (Observation), on its own calendar date (a partial date
  counts as its earliest day; a record without a usable date is not evidence).
- Conditions: refuted or entered-in-error ones are ignored; ``active``/``recurrence``/``relapse``
  ones are on the problem list (the others are recorded, for exclusions).
- Codes are matched per code system (canonical URI or HL7 OID): CVX without leading zeros,
  ICD-10-CM without the dot and by prefix.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from ehr.fhir import FhirDate, codings, parse_fhir_date, period_of, status_code
from ehr.modules.care_gaps.codes import CODE_SYSTEM_ALIASES, CodeList, CodeSystem
from ehr.modules.care_gaps.dates import age_in_months
from ehr.modules.care_gaps.schemas import CareGapChart

__all__ = ["Code", "Facts", "Matcher", "Record", "codes_of", "matcher_for", "read_chart"]

_OBSERVATION_DONE: Final = frozenset({"final", "amended", "corrected"})
_CONDITION_ACTIVE: Final = frozenset({"active", "recurrence", "relapse"})
_CONDITION_VOID: Final = frozenset({"refuted", "entered-in-error"})

Code = tuple[CodeSystem, str]


def _normalise(system: CodeSystem, code: str) -> str:
    code = code.strip()
    if system == "cvx":
        return code.lstrip("0") or "0"
    if system == "icd10cm":
        return code.upper().replace(".", "")
    return code


def codes_of(concept: object) -> frozenset[Code]:
    found: set[Code] = set()
    for coding in codings(concept):
        system = CODE_SYSTEM_ALIASES.get(coding.system.strip()) if coding.system else None
        if system is not None:
            found.add((system, _normalise(system, coding.code)))
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class Matcher:
    codes: frozenset[Code]
    icd10_prefixes: tuple[str, ...]

    @classmethod
    def of(cls, *lists: CodeList) -> Matcher:
        codes = {
            (system, _normalise(system, code)) for items in lists for system, code in items.items()
        }
        prefixes = tuple(
            _normalise("icd10cm", prefix) for items in lists for prefix in items.icd10cm_prefixes
        )
        return cls(codes=frozenset(codes), icd10_prefixes=prefixes)

    def matches(self, codes: Iterable[Code]) -> bool:
        for system, code in codes:
            if (system, code) in self.codes:
                return True
            if system == "icd10cm" and code.startswith(self.icd10_prefixes):
                return True
        return False


@functools.cache
def matcher_for(*lists: CodeList) -> Matcher:
    return Matcher.of(*lists)


# --------------------------------------------------------------------------- the chart, read


@dataclass(frozen=True, slots=True)
class Record:
    codes: frozenset[Code]
    # The record's own date (a partial date: from its first day; ``start`` orders a day's records).
    when: FhirDate | None
    resource: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Facts:
    patient_id: str
    age_months: int | None
    sex: Literal["female", "male"] | None
    complete: bool
    immunizations: tuple[Record, ...]
    procedures: tuple[Record, ...]
    observations: tuple[Record, ...]
    active_conditions: tuple[frozenset[Code], ...]
    recorded_conditions: tuple[frozenset[Code], ...]

    @property
    def age_years(self) -> int | None:
        return None if self.age_months is None else self.age_months // 12

    def records(self, system: CodeSystem) -> tuple[Record, ...]:
        if system == "cvx":
            return self.immunizations
        if system == "loinc":
            return self.observations
        return self.procedures


def _period_start(value: object) -> FhirDate | None:
    period = period_of(value)
    return None if period is None else period.start


def _period_date(value: object) -> FhirDate | None:
    """A Period's start, else its end."""
    period = period_of(value)
    return None if period is None else period.start or period.end


def read_chart(chart: CareGapChart, today: dt.date) -> Facts | None:
    patient = chart.patient
    patient_id = patient.get("id")
    if not isinstance(patient_id, str) or not patient_id:
        raise ValueError("the chart's Patient has no id")
    deceased_time = patient.get("deceasedDateTime")
    if patient.get("deceasedBoolean") is True or (
        isinstance(deceased_time, str) and deceased_time.strip()
    ):
        return None
    birth_date = parse_fhir_date(patient.get("birthDate"))
    birth = None if birth_date is None else birth_date.last  # the youngest possible age
    age_months = None if birth is None or birth > today else age_in_months(birth, today)
    gender = patient.get("gender")
    sex: Literal["female", "male"] | None = (
        "female" if gender == "female" else "male" if gender == "male" else None
    )

    immunizations = tuple(
        Record(
            codes_of(item.get("vaccineCode")),
            parse_fhir_date(item.get("occurrenceDateTime")),
            item,
        )
        for item in chart.immunizations
        if item.get("status") == "completed" and item.get("isSubpotent") is not True
    )
    procedures = tuple(
        Record(
            codes_of(item.get("code")),
            parse_fhir_date(item.get("performedDateTime"))
            or _period_date(item.get("performedPeriod")),
            item,
        )
        for item in chart.procedures
        if item.get("status") == "completed"
    )
    observations = tuple(
        Record(
            codes_of(item.get("code")),
            parse_fhir_date(item.get("effectiveDateTime"))
            or _period_start(item.get("effectivePeriod"))
            or parse_fhir_date(item.get("effectiveInstant"))
            or parse_fhir_date(item.get("issued")),
            item,
        )
        for item in chart.observations
        if item.get("status") in _OBSERVATION_DONE
    )
    active: list[frozenset[Code]] = []
    recorded: list[frozenset[Code]] = []
    for condition in chart.conditions:
        if status_code(condition.get("verificationStatus")) in _CONDITION_VOID:
            continue
        codes = codes_of(condition.get("code"))
        recorded.append(codes)
        if status_code(condition.get("clinicalStatus")) in _CONDITION_ACTIVE:
            active.append(codes)
    return Facts(
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
