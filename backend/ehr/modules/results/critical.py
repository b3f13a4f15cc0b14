"""Critical values: the shipped, cited table (``data/critical_values.json``) and a tenant's
overrides, as one lookup by LOINC code (ADR 0022).

A limit is strict: a value below ``low`` is critical low (v3 ``LL``), above ``high`` critical
high (``HH``), both compared in the limit's UCUM unit after converting the result's value with
ucumvert. A tenant's override replaces the shipped row of its code (or adds a code); each row
says where it comes from (the shipped row's citation, or ``tenant``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Any, Final

from ehr.modules.results.units import convert

__all__ = [
    "CriticalLimit",
    "CriticalTable",
    "critical_flag",
    "shipped_limits",
    "shipped_sources",
]

TENANT_SOURCE: Final = "tenant"


@dataclass(frozen=True, slots=True)
class CriticalLimit:
    """The critical limits of one LOINC code, in ``unit`` (either bound may be absent)."""

    loinc: str
    unit: str
    low: float | None
    high: float | None
    display: str | None = None
    source: str = TENANT_SOURCE


@lru_cache(maxsize=1)
def _shipped() -> tuple[Mapping[str, CriticalLimit], Mapping[str, str]]:
    raw = resources.files("ehr.modules.results").joinpath("data", "critical_values.json")
    document: dict[str, Any] = json.loads(raw.read_text(encoding="utf-8"))
    limits = {
        row["loinc"]: CriticalLimit(
            loinc=row["loinc"],
            unit=row["unit"],
            low=float(row["low"]) if row.get("low") is not None else None,
            high=float(row["high"]) if row.get("high") is not None else None,
            display=row.get("display"),
            source=row["source"],
        )
        for row in document["limits"]
    }
    return MappingProxyType(limits), MappingProxyType(dict(document["sources"]))


def shipped_limits() -> Mapping[str, CriticalLimit]:
    """The shipped table by LOINC code."""
    return _shipped()[0]


def shipped_sources() -> Mapping[str, str]:
    """The citations of the shipped table, by source key."""
    return _shipped()[1]


class CriticalTable:
    """The limits a tenant's results are judged by: shipped rows, overridden per code."""

    def __init__(self, overrides: Mapping[str, CriticalLimit] | None = None) -> None:
        self._limits = {**shipped_limits(), **(overrides or {})}

    def limit_of(self, loinc: str) -> CriticalLimit | None:
        return self._limits.get(loinc)

    def rows(self) -> list[CriticalLimit]:
        return [self._limits[code] for code in sorted(self._limits)]


def critical_flag(value: float, unit: str, limit: CriticalLimit) -> str | None:
    """``LL`` / ``HH`` when ``value`` (in ``unit``) is beyond ``limit``, else ``None``.

    Raises ``UnitNotAllowed`` when ``unit`` cannot be expressed in the limit's unit.
    """
    compared = convert(value, unit, limit.unit)
    if limit.low is not None and compared < limit.low:
        return "LL"
    if limit.high is not None and compared > limit.high:
        return "HH"
    return None
