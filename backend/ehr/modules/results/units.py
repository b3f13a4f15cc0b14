"""UCUM units of laboratory results, through ``ucumvert`` (ADR 0019, ADR 0022).

A result's unit must be valid UCUM (``mmol/L``, ``mg/dL``, ``10*9/L``, ``{INR}``); a critical
limit and a trend compare values only after converting them to one unit — never by a table of
factors of our own. A unit of another dimension (``mg/dL`` for a LOINC code measured in moles)
cannot be converted and is refused (``unit_not_allowed``): LOINC codes name their property
(mass vs substance concentration), so a mismatch is a wrong code or a wrong unit.

One registry per process, built lazily (about a second, in a worker thread on first use);
parsed units cached. A unit that is only an annotation (``{INR}``, ``{ratio}``) is UCUM's
unity ``1``.
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache
from typing import Any, Final

import anyio

from ehr.core.errors import RequestValidationFailed

__all__ = [
    "UCUM_SYSTEM",
    "UnitNotAllowed",
    "check_unit",
    "convert",
    "same_dimension",
    "units_ready",
]

UCUM_SYSTEM: Final = "http://unitsofmeasure.org"

_lock = threading.Lock()
_registry: Any = None


class UnitNotAllowed(RequestValidationFailed):
    """The unit is not UCUM, or not of the kind this result is measured in."""

    code = "unit_not_allowed"
    title = "Unit not allowed"


def _ucum_registry() -> Any:
    global _registry
    if _registry is None:
        with _lock:
            if _registry is None:
                from ucumvert import PintUcumRegistry  # type: ignore[import-untyped]

                _registry = PintUcumRegistry()
    return _registry


async def units_ready() -> None:
    """Build the registry in a worker thread the first time (not on the event loop)."""
    if _registry is None:
        await anyio.to_thread.run_sync(_ucum_registry)


@lru_cache(maxsize=512)
def _quantity(code: str) -> Any | None:
    """One ``code`` as a pint Quantity (``None``: not valid UCUM)."""
    registry = _ucum_registry()
    text = code.strip()
    if text.startswith("{") and text.endswith("}") and text.count("{") == 1:
        text = "1"  # a bare annotation is unity
    try:
        parsed = registry.from_ucum(text)
    except Exception:  # noqa: BLE001 - lark/pint raise several unrelated types for bad codes
        return None
    if not hasattr(parsed, "dimensionality"):
        return None
    magnitude = getattr(parsed, "magnitude", 1)
    if not isinstance(magnitude, int | float) or not math.isfinite(magnitude) or magnitude <= 0:
        return None
    return parsed


def check_unit(code: str, *, field: str = "unit") -> None:
    """422 ``unit_not_allowed`` unless ``code`` is valid UCUM."""
    if _quantity(code) is None:
        raise UnitNotAllowed(
            f"{code!r} is not a UCUM unit (for example mmol/L, mg/dL, 10*9/L, {{INR}})",
            extra={"unit": code, "field": field},
        )


def same_dimension(unit: str, other: str) -> bool:
    """Whether values in ``unit`` can be expressed in ``other`` (both valid UCUM)."""
    a, b = _quantity(unit), _quantity(other)
    return a is not None and b is not None and a.dimensionality == b.dimensionality


def convert(value: float, unit: str, target: str) -> float:
    """``value`` in ``unit`` expressed in ``target`` (:class:`UnitNotAllowed` when it cannot be)."""
    if unit == target:
        return value
    source, goal = _quantity(unit), _quantity(target)
    if source is None or goal is None or source.dimensionality != goal.dimensionality:
        raise UnitNotAllowed(
            f"{unit!r} cannot be expressed in {target!r}",
            extra={"unit": unit, "expected_unit": target},
        )
    converted = float((value * source / goal).to("dimensionless").magnitude)
    if not math.isfinite(converted):  # pragma: no cover - finite input, finite factors
        raise UnitNotAllowed(f"{unit!r} cannot be expressed in {target!r}")
    return converted
