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

import datetime as dt
from collections.abc import Mapping
from typing import Any

import anyio

from ehr.modules import medication_safety
from ehr.modules.medication_safety import MedicationChecks, PatientRecord
from ehr.modules.orders.findings import medication_findings
from ehr.modules.orders.schemas import Finding

__all__ = ["medication_safety_findings", "read_medication_record"]

# The record the checks read: the medication-safety module's own reader (one reader, as one
# engine).
read_medication_record = medication_safety.read_patient_record


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
