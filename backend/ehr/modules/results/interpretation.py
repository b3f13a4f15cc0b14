"""Interpretation flags (HL7 v3 ObservationInterpretation) computed from a result's ranges.

A numeric result: ``LL`` / ``HH`` when it is beyond the critical limit of its LOINC code (the
tenant's table, compared after UCUM conversion), else ``L`` / ``H`` against the laboratory's
reference range, ``N`` inside it, nothing when there is no range to judge by. A coded or text
result: ``AA`` when the laboratory calls it critical, ``A`` when it calls it abnormal. The
laboratory's own flags are never taken for numbers: the same value always gets the same flag.
"""

from __future__ import annotations

from dataclasses import dataclass

from ehr.modules.results.critical import CriticalLimit, CriticalTable, critical_flag
from ehr.modules.results.schemas import ObservationIn
from ehr.modules.results.units import UnitNotAllowed, check_unit, same_dimension

__all__ = ["Judged", "judge"]


@dataclass(frozen=True, slots=True)
class Judged:
    """A result's interpretation and the critical limit it was judged by (if any)."""

    interpretation: str | None
    limit: CriticalLimit | None = None

    @property
    def critical(self) -> bool:
        return self.interpretation in {"LL", "HH", "AA"}


def judge(result: ObservationIn, table: CriticalTable, *, field: str) -> Judged:
    """The interpretation of one submitted result (422 ``unit_not_allowed`` for a unit that is
    not UCUM, or not of the kind its LOINC code is measured in)."""
    if result.quantity is None:
        if result.critical:
            return Judged("AA")
        return Judged("A" if result.abnormal else None)
    value, unit = result.quantity.value, result.quantity.unit
    check_unit(unit, field=f"{field}.quantity.unit")
    limit = table.limit_of(result.code)
    if limit is not None:
        if not same_dimension(unit, limit.unit):
            raise UnitNotAllowed(
                f"{unit!r} is not a unit {result.code} is measured in (for example {limit.unit!r})",
                extra={"field": f"{field}.quantity.unit", "expected_unit": limit.unit},
            )
        flag = critical_flag(value, unit, limit)
        if flag is not None:
            return Judged(flag, limit)
    reference = result.reference_range
    if reference is None or (reference.low is None and reference.high is None):
        return Judged(None, limit)
    if reference.low is not None and value < reference.low:
        return Judged("L", limit)
    if reference.high is not None and value > reference.high:
        return Judged("H", limit)
    return Judged("N", limit)
