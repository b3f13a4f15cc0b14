"""Reading v2 fields the way the mappings need them: the explicit null ``""`` reads as absent.

The parser keeps ``""`` as it came (``Repetition.is_null``); for a conversion that writes whole
resources with PUT, a null and an absent value mean the same thing — the element is left out —
so every read here goes through :func:`text`.
"""

from __future__ import annotations

from typing import Final

from ehr.modules.hl7v2.parsing import Repetition, Segment

__all__ = ["NULL", "component", "component_text", "location_of", "repetitions", "text", "value"]

NULL: Final = '""'


def text(raw: str) -> str:
    """``raw`` stripped; ``""`` (the HL7 null) and whitespace read as the empty string."""
    stripped = raw.strip()
    return "" if stripped == NULL else stripped


def value(segment: Segment, field: int, component_no: int = 1, subcomponent: int = 1) -> str:
    """``FIELD.COMPONENT.SUBCOMPONENT`` of the first repetition, nulls as ``""``."""
    return text(segment.value(field, component_no, subcomponent))


def component(rep: Repetition, component_no: int, subcomponent: int = 1) -> str:
    """One subcomponent of a repetition, nulls as ``""``."""
    return text(rep.value(component_no, subcomponent))


def component_text(rep: Repetition, component_no: int) -> str:
    """A whole component as text: an unescaped ``&`` in a string component (real feeds send
    ``&GDT^…``) splits it into subcomponents; they are joined back."""
    parts = rep.component(component_no)
    return text("&".join(parts).strip("&")) if parts else ""


def repetitions(segment: Segment, field: int) -> tuple[Repetition, ...]:
    """The repetitions of a field that carry a value (nulls and empties left out)."""
    return tuple(rep for rep in segment.repetitions(field) if not rep.is_null)


def location_of(segment: Segment, field: int | None = None) -> str:
    """``"PID-7"`` for a field, ``"PID"`` for the segment: what errors name."""
    return segment.name if field is None else f"{segment.name}-{field}"
