"""UCUM units of vital signs: parse a submitted unit, check its dimension, convert (ADR 0019).

The UCUM grammar and the conversions are the maintained ``ucumvert`` library's (a UCUM parser on
top of ``pint``): we never keep our own table of conversion factors. The registry takes about a
second to build, so it is built once, on first use, and parsed codes are cached.

A unit is allowed for a vital sign when UCUM can parse it and it has the dimension of the vital's
canonical unit (``[lb_av]`` for a weight, not ``cm``); anything else is ``unit_not_allowed``.
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

import anyio

from ehr.core.errors import RequestValidationFailed

if TYPE_CHECKING:
    from pint import Unit

__all__ = ["UnitNotAllowed", "convert", "parse_unit", "units_ready"]

UCUM_SYSTEM: Final = "http://unitsofmeasure.org"

_lock = threading.Lock()
_registry: Any = None


class UnitNotAllowed(RequestValidationFailed):
    """The unit is not UCUM, or not a unit this vital sign can be measured in."""

    code = "unit_not_allowed"
    title = "Unit not allowed"


def _ucum_registry() -> Any:
    """The one ``PintUcumRegistry`` of the process (built lazily: it is slow to build)."""
    global _registry
    if _registry is None:
        with _lock:
            if _registry is None:
                from ucumvert import PintUcumRegistry  # type: ignore[import-untyped]

                _registry = PintUcumRegistry()
    return _registry


async def units_ready() -> None:
    """Build the registry in a worker thread the first time (about a second of CPU), so the
    first vitals request of a process does not stall the event loop."""
    if _registry is None:
        await anyio.to_thread.run_sync(_ucum_registry)


@lru_cache(maxsize=256)
def parse_unit(code: str) -> tuple[Unit, float] | None:
    """The pint unit and factor of the UCUM code ``code`` (``None``: not valid UCUM).

    ucumvert answers a pint Quantity (``1 inch``; ``1 _10**3 kilogram`` for ``10*3.kg``): its
    unit and its magnitude, the factor a value in that unit is multiplied by.
    """
    registry = _ucum_registry()
    try:
        parsed = registry.from_ucum(code)
    except Exception:  # noqa: BLE001 - lark/pint raise several unrelated types for bad codes
        return None
    units = getattr(parsed, "units", parsed)
    factor = getattr(parsed, "magnitude", 1)
    if not isinstance(factor, int | float) or not math.isfinite(factor) or factor <= 0:
        return None
    return units, float(factor)


def convert(value: float, unit_code: str, canonical_code: str, *, what: str) -> float:
    """``value`` in ``unit_code`` expressed in ``canonical_code`` (either way round: the range
    of a vital is shown back in the unit the caller used).

    Raises :class:`UnitNotAllowed` when ``unit_code`` is not UCUM or not of the canonical unit's
    dimension (``what`` names the vital sign in the message).
    """
    if unit_code == canonical_code:
        return value
    parsed = parse_unit(unit_code)
    parsed_canonical = parse_unit(canonical_code)
    if (
        parsed is None
        or parsed_canonical is None
        or parsed[0].dimensionality != parsed_canonical[0].dimensionality
    ):
        raise UnitNotAllowed(
            f"{unit_code!r} is not a UCUM unit {what} can be recorded in "
            f"(for example {canonical_code!r})",
            extra={"unit": unit_code, "canonical_unit": canonical_code},
        )
    (unit, factor), (canonical, canonical_factor) = parsed, parsed_canonical
    registry = _ucum_registry()
    quantity = registry.Quantity(value * factor if factor != 1 else value, unit)
    converted = float(quantity.to(canonical).magnitude) / canonical_factor
    if not math.isfinite(converted):  # pragma: no cover - finite input, finite factors
        raise UnitNotAllowed(f"{unit_code!r} cannot be converted to {canonical_code!r}")
    return converted
