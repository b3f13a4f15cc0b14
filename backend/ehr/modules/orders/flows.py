"""The sign checks that call the medication-safety module (ADR 0016: the caller's ``flows.py``).

One engine, not two: a medication order is checked by
``medication_safety.MedicationChecks.check_orders`` — the entry point the CDS ``order-sign``
service calls — on the patient's current record (active and on-hold MedicationRequests, active
MedicationStatements with their Medications, AllergyIntolerances: the searches the CDS
``order-sign`` prefetch makes, bounded the same way), under the tenant's display policy
(``medication_checks_for``). The order is proposed with its id, so the issue implicates it by
reference. Restricted records are left out, as for decision support (no break-glass).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

import anyio

from ehr.fhir import SearchResult, TenantFhirClient
from ehr.modules.medication_safety import MedicationChecks, PatientRecord
from ehr.modules.orders.findings import medication_findings
from ehr.modules.orders.schemas import Finding

__all__ = ["medication_safety_findings", "read_medication_record"]

_PAGE_SIZE: Final = 100
_MAX_PAGES: Final = 3


async def _search(
    fhir: TenantFhirClient, resource_type: str, params: list[tuple[str, str]]
) -> SearchResult:
    return await fhir.search_all(resource_type, params, page_size=_PAGE_SIZE, max_pages=_MAX_PAGES)


async def read_medication_record(
    fhir: TenantFhirClient, patient: Mapping[str, Any]
) -> PatientRecord:
    """The patient's current medication record (three searches at once, bounded)."""
    subject = f"Patient/{patient['id']}"
    requests, statements, allergies = await asyncio.gather(
        _search(
            fhir,
            "MedicationRequest",
            [
                ("subject", subject),
                ("status", "active,on-hold"),
                ("_include", "MedicationRequest:medication"),
            ],
        ),
        _search(
            fhir,
            "MedicationStatement",
            [
                ("subject", subject),
                ("status", "active,intended,on-hold"),
                ("_include", "MedicationStatement:medication"),
            ],
        ),
        _search(fhir, "AllergyIntolerance", [("patient", subject)]),
    )
    medications = {
        ref: resource
        for part in (requests, statements)
        for ref, resource in part.included.items()
        if resource.get("resourceType") == "Medication"
    }
    return PatientRecord(
        patient=patient,
        requests=requests.matches,
        statements=statements.matches,
        allergies=allergies.matches,
        medications=medications,
        complete=requests.complete and statements.complete and allergies.complete,
    )


async def medication_safety_findings(
    checks: MedicationChecks,
    record: PatientRecord,
    order: Mapping[str, Any],
    *,
    now: dt.datetime,
) -> list[Finding]:
    """The engine's findings for ``order`` against ``record`` (CPU work: a worker thread)."""
    found = await anyio.to_thread.run_sync(lambda: checks.check_orders(record, [order], now=now))
    return medication_findings(found.result)
