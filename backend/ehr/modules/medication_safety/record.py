"""Reading a patient's record from the tenant's FHIR partition, bounded.

All reads are bounded: :data:`PAGE_SIZE` per page, at most :data:`MAX_PAGES` pages per resource
type; beyond that the record (and the profile built from it) says ``complete: false``.

- **MedicationRequest** ``?subject=Patient/{id}&status=active,on-hold`` (with the referenced
  Medication resources ``_include``-d);
- **MedicationStatement** ``?subject=Patient/{id}&status=active,intended,on-hold`` (likewise);
- **AllergyIntolerance** ``?patient=Patient/{id}``.

The three searches (and the latest body weight) run concurrently. What counts of what was
read: :mod:`.profile`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ehr.core.errors import AppError
from ehr.fhir import SearchResult, TenantFhirClient, bundle_resources

__all__ = [
    "ACTIVE_REQUEST_STATUSES",
    "ACTIVE_STATEMENT_STATUSES",
    "MAX_PAGES",
    "PAGE_SIZE",
    "PatientRecord",
    "read_patient_record",
]

PAGE_SIZE: Final = 100
MAX_PAGES: Final = 3

ACTIVE_REQUEST_STATUSES: Final = frozenset({"active", "on-hold"})
ACTIVE_STATEMENT_STATUSES: Final = frozenset({"active", "intended", "on-hold"})


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """What was read for one patient (raw FHIR resources): from the FHIR server
    (:func:`read_patient_record`) or gathered by the caller (a CDS Hooks call's prefetch)."""

    patient: Mapping[str, Any]
    requests: Sequence[Mapping[str, Any]] = ()
    statements: Sequence[Mapping[str, Any]] = ()
    allergies: Sequence[Mapping[str, Any]] = ()
    # "Medication/{id}" → the Medication resources the searches included.
    medications: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    complete: bool = True
    # The latest body-weight Observation (LOINC 29463-7), for per-kg dose limits.
    weight: Mapping[str, Any] | None = None


async def _bounded_search(
    fhir: TenantFhirClient, resource_type: str, params: list[tuple[str, str]]
) -> SearchResult:
    """Matches of a search (and the resources it included), at most :data:`MAX_PAGES` pages."""
    return await fhir.search_all(resource_type, params, page_size=PAGE_SIZE, max_pages=MAX_PAGES)


def _first_error(group: BaseExceptionGroup[Exception]) -> Exception:
    first = group.exceptions[0]
    return _first_error(first) if isinstance(first, BaseExceptionGroup) else first


async def _search_concurrently(
    fhir: TenantFhirClient, subject: str
) -> tuple[SearchResult, SearchResult, SearchResult]:
    async with asyncio.TaskGroup() as group:
        requests = group.create_task(
            _bounded_search(
                fhir,
                "MedicationRequest",
                [
                    ("subject", subject),
                    ("status", ",".join(sorted(ACTIVE_REQUEST_STATUSES))),
                    ("_include", "MedicationRequest:medication"),
                ],
            )
        )
        statements = group.create_task(
            _bounded_search(
                fhir,
                "MedicationStatement",
                [
                    ("subject", subject),
                    ("status", ",".join(sorted(ACTIVE_STATEMENT_STATUSES))),
                    ("_include", "MedicationStatement:medication"),
                ],
            )
        )
        allergies = group.create_task(
            _bounded_search(fhir, "AllergyIntolerance", [("patient", subject)])
        )
    return requests.result(), statements.result(), allergies.result()


BODY_WEIGHT: Final = "http://loinc.org|29463-7"


async def _latest_weight(fhir: TenantFhirClient, subject: str) -> Mapping[str, Any] | None:
    """The newest final/amended body weight, or None (also when HAPI cannot answer: per-kg
    dose limits are then reported as not checked, the rest of the check goes on)."""
    try:
        bundle = await fhir.search(
            "Observation",
            [
                ("subject", subject),
                ("code", BODY_WEIGHT),
                ("status", "final,amended,corrected"),
                ("_sort", "-date"),
                ("_count", "1"),
            ],
            single_page=True,
        )
    except AppError:
        return None
    return next(iter(bundle_resources(bundle, "Observation")), None)


async def read_patient_record(fhir: TenantFhirClient, patient: Mapping[str, Any]) -> PatientRecord:
    """The patient's orders, statements, allergies and referenced Medications (bounded).

    The three searches run concurrently; if one fails the others are cancelled and its error
    (an :mod:`ehr.fhir.errors` error) is raised as itself.
    """
    subject = f"Patient/{patient['id']}"
    weight = asyncio.create_task(_latest_weight(fhir, subject))
    try:
        found = await _search_concurrently(fhir, subject)
    except ExceptionGroup as failed:
        weight.cancel()
        raise _first_error(failed) from None
    medications = {
        ref: resource
        for part in found
        for ref, resource in part.included.items()
        if resource.get("resourceType") == "Medication"
    }
    return PatientRecord(
        patient=patient,
        requests=found[0].matches,
        statements=found[1].matches,
        allergies=found[2].matches,
        medications=medications,
        complete=all(part.complete for part in found),
        weight=await weight,
    )
