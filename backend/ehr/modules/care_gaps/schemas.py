"""What care gaps read (a patient's chart) and what they answer (reminders, as plain data).

Resources are plain FHIR R4 JSON objects. A :class:`Reminder` carries codes, dates and values from
the record, never its free text; turning it into something a clinician sees (a CDS Hooks card) is
the caller's job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ehr.modules.care_gaps.knowledge import Citation, Indicator, SuggestedOrder

__all__ = ["CareGapChart", "Reminder"]


class CareGapChart(Protocol):
    """The parts of a patient's chart care gaps read.

    ``complete`` is False when part of the record could not be read (a search cut short, a source
    that failed): every reminder then says that the check may have missed records.
    """

    @property
    def patient(self) -> Mapping[str, Any]: ...

    @property
    def immunizations(self) -> Sequence[Mapping[str, Any]]: ...

    # Vital signs and laboratory results (in any order).
    @property
    def observations(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def procedures(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def conditions(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def complete(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Reminder:
    """One open care gap (``gap:...``) or out-of-range result (``result:...``) of a patient.

    ``summary`` is one line (not clipped); ``detail`` explains it in markdown (who the rule is
    for, what was found, the guideline). ``citations`` are the rule's references, the first one the
    rule's source; ``order`` is the draft order that would close a gap (None for results).
    """

    rule_id: str
    title: str
    summary: str
    detail: str
    indicator: Indicator
    patient_id: str
    citations: tuple[Citation, ...]
    order: SuggestedOrder | None
