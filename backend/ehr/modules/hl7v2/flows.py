"""Workflows of the HL7 v2 module that cross modules (ADR 0033).

``apply_results_rules``: an ORU's results go through the results module's rules (ADR 0022)
before they are written — the tenant's critical-value table flags what the laboratory did not,
and a report with a critical result gets its acknowledgement Task in the same transaction, so
it is on the clinicians' critical-results worklist like one recorded through the API. The Task
is a conditional create keyed on the report, so a resent or corrected ORU adds no second one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from ehr.modules import results

__all__ = ["CRITICAL_ACK_SYSTEM", "apply_results_rules"]

# Task.identifier of the acknowledgement of a report that came over HL7 v2.
CRITICAL_ACK_SYSTEM: Final = "urn:ehr:hl7v2:critical-ack"
_NAMESPACE: Final = uuid.UUID("6f1b8a8e-7c1d-4b0e-9a43-2f1c2d7b9e11")


async def apply_results_rules(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    bundle: dict[str, Any],
    *,
    sender: str,
    authored: datetime,
) -> int:
    """Judge the Bundle's Observations and add an acknowledgement Task per critical report;
    returns how many reports are critical."""
    entries: list[dict[str, Any]] = list(bundle.get("entry") or ())
    by_url: dict[str, dict[str, Any]] = {
        entry["fullUrl"]: entry["resource"]
        for entry in entries
        if isinstance(entry.get("fullUrl"), str) and isinstance(entry.get("resource"), dict)
    }
    critical_reports = 0
    for entry in list(entries):
        report = entry.get("resource") or {}
        if report.get("resourceType") != "DiagnosticReport":
            continue
        observations = {
            ref: by_url[ref]
            for ref in _result_refs(report)
            if by_url.get(ref, {}).get("resourceType") == "Observation"
        }
        review = await results.review_observations(session, tenant_id, observations)
        patient = (report.get("subject") or {}).get("reference")
        if not review.critical or not isinstance(patient, str):
            continue
        critical_reports += 1
        key = str(uuid.uuid5(_NAMESPACE, str((entry.get("request") or {}).get("url"))))
        task = results.acknowledgement_for(
            patient,
            entry["fullUrl"],
            review.critical,
            authored=authored,
            requester={"display": f"HL7 v2 {sender}"},
        )
        task["identifier"] = [{"system": CRITICAL_ACK_SYSTEM, "value": key}]
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid5(_NAMESPACE, key)}",
                "resource": task,
                "request": {
                    "method": "POST",
                    "url": "Task",
                    "ifNoneExist": f"identifier={CRITICAL_ACK_SYSTEM}|{key}",
                },
            }
        )
    bundle["entry"] = entries
    return critical_reports


def _result_refs(report: Mapping[str, Any]) -> list[str]:
    return [
        ref["reference"]
        for ref in report.get("result") or ()
        if isinstance(ref, Mapping) and isinstance(ref.get("reference"), str)
    ]
