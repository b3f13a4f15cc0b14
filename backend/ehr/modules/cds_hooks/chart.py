"""The patient data a CDS service decides on, gathered from prefetch or read from FHIR.

Resources are plain FHIR R4 JSON objects (dicts), never partial: an entry that is not a resource
of the expected type is dropped when the chart is built. ``complete`` is False when a search was
cut short (paging limit) or a source answered with an OperationOutcome for part of the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PatientChart"]


@dataclass(frozen=True, slots=True)
class PatientChart:
    patient: Mapping[str, Any]
    immunizations: Sequence[Mapping[str, Any]] = ()
    # Vital signs and laboratory results (newest first is NOT guaranteed: sort by effective time).
    observations: Sequence[Mapping[str, Any]] = ()
    procedures: Sequence[Mapping[str, Any]] = ()
    conditions: Sequence[Mapping[str, Any]] = ()
    allergies: Sequence[Mapping[str, Any]] = ()
    medication_requests: Sequence[Mapping[str, Any]] = ()
    medication_statements: Sequence[Mapping[str, Any]] = ()
    # Medications referenced by the requests/statements, by "Medication/{id}".
    medications: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    service_requests: Sequence[Mapping[str, Any]] = ()
    complete: bool = True
