"""The FHIR resources a recorded report is made of: laboratory Observations, the
DiagnosticReport that groups them, and the acknowledgement Task of a critical result.

Observation: category ``laboratory``, LOINC code, ``valueQuantity`` (UCUM, as the laboratory
reported it: stored values are never converted), ``valueCodeableConcept`` or ``valueString``,
``referenceRange``, ``interpretation`` (v3), ``basedOn`` the order, ``performer`` the user,
``issued`` the report's. DiagnosticReport: category LAB (v2-0074), LOINC panel/test code,
status, ``effectiveDateTime``, ``issued``, ``basedOn``, ``result`` the Observations. Task: code
``acknowledge-critical-result`` (our CodeSystem), ``focus`` the report, ``for`` the patient,
status ``requested``, intent ``order``, priority ``stat``, ``input`` the critical Observations,
``owner`` the order's requester and ``location`` the unit when known.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

from ehr.modules.results.codes import (
    ACKNOWLEDGE_CRITICAL,
    INTERPRETATION_DISPLAY,
    INTERPRETATION_SYSTEM,
    LABORATORY_CATEGORY,
    LOINC_SYSTEM,
    OBSERVATION_CATEGORY_SYSTEM,
    REPORT_CATEGORY_SYSTEM,
    TASK_CODE_SYSTEM,
)
from ehr.modules.results.interpretation import Judged
from ehr.modules.results.schemas import ObservationIn, ResultRecord
from ehr.modules.results.units import UCUM_SYSTEM
from ehr.platform import fhir_changes

__all__ = [
    "ACK_OUTPUT_AT",
    "ACK_OUTPUT_BY",
    "CRITICAL_INPUT",
    "LAB_CATEGORY",
    "acknowledgement_task",
    "completed_task",
    "diagnostic_report",
    "instant",
    "observation",
]

LAB_CATEGORY: Final = {
    "coding": [
        {
            "system": OBSERVATION_CATEGORY_SYSTEM,
            "code": LABORATORY_CATEGORY,
            "display": "Laboratory",
        }
    ]
}
_REPORT_CATEGORY: Final = {
    "coding": [{"system": REPORT_CATEGORY_SYSTEM, "code": "LAB", "display": "Laboratory"}]
}
CRITICAL_INPUT: Final = "critical-result"
ACK_OUTPUT_BY: Final = "acknowledged-by"
ACK_OUTPUT_AT: Final = "acknowledged-at"


def instant(value: dt.datetime) -> str:
    """A FHIR instant in UTC, seconds precision (``2026-12-07T07:00:00Z``)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _loinc(code: str, display: str | None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": LOINC_SYSTEM, "code": code}
    if display is not None:
        coding["display"] = display
    concept: dict[str, Any] = {"coding": [coding]}
    if display is not None:
        concept["text"] = display
    return concept


def _task_concept(code: str) -> dict[str, Any]:
    return {"coding": [{"system": TASK_CODE_SYSTEM, "code": code}]}


def observation(
    patient_id: str,
    result: ObservationIn,
    judged: Judged,
    *,
    status: str,
    effective: dt.datetime,
    issued: dt.datetime,
    order_id: str | None,
    performer: dict[str, Any],
) -> dict[str, Any]:
    """The laboratory Observation of one submitted result."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        # The report's own result.critical event covers it: the FHIR change feed emits no
        # second one for this first version (ehr.platform.fhir_changes).
        "meta": {"tag": [dict(fhir_changes.RESULTS_TAG)]},
        "status": status,
        "category": [LAB_CATEGORY],
        "code": _loinc(result.code, result.display),
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": instant(effective),
        "issued": instant(issued),
        "performer": [performer],
    }
    if order_id is not None:
        resource["basedOn"] = [{"reference": f"ServiceRequest/{order_id}"}]
    if result.quantity is not None:
        resource["valueQuantity"] = {
            "value": result.quantity.value,
            "unit": result.quantity.unit,
            "system": UCUM_SYSTEM,
            "code": result.quantity.unit,
        }
    elif result.coded is not None:
        coding: dict[str, Any] = {"system": result.coded.system, "code": result.coded.code}
        if result.coded.display is not None:
            coding["display"] = result.coded.display
        resource["valueCodeableConcept"] = {"coding": [coding]}
    elif result.text is not None:
        resource["valueString"] = result.text
    if result.reference_range is not None:
        reference: dict[str, Any] = {}
        unit = result.quantity.unit if result.quantity is not None else None
        for bound in ("low", "high"):
            value = getattr(result.reference_range, bound)
            if value is not None:
                reference[bound] = {
                    "value": value,
                    "system": UCUM_SYSTEM,
                    "code": unit,
                    "unit": unit,
                }
        if result.reference_range.text is not None:
            reference["text"] = result.reference_range.text
        resource["referenceRange"] = [reference]
    if judged.interpretation is not None:
        resource["interpretation"] = [
            {
                "coding": [
                    {
                        "system": INTERPRETATION_SYSTEM,
                        "code": judged.interpretation,
                        "display": INTERPRETATION_DISPLAY[judged.interpretation],
                    }
                ]
            }
        ]
    if result.note is not None:
        resource["note"] = [{"text": result.note}]
    return resource


def diagnostic_report(
    patient_id: str,
    payload: ResultRecord,
    *,
    issued: dt.datetime,
    result_refs: Sequence[str],
    performer: dict[str, Any],
) -> dict[str, Any]:
    """The DiagnosticReport grouping the results (``result_refs``: their fullUrls)."""
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "status": payload.status,
        "category": [_REPORT_CATEGORY],
        "code": _loinc(payload.code, payload.display),
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": instant(payload.effective),
        "issued": instant(issued),
        "performer": [performer],
        "result": [{"reference": ref} for ref in result_refs],
    }
    if payload.order_id is not None:
        resource["basedOn"] = [{"reference": f"ServiceRequest/{payload.order_id}"}]
    if payload.conclusion is not None:
        resource["conclusion"] = payload.conclusion
    return resource


def acknowledgement_task(
    patient_id: str,
    *,
    report_ref: str,
    critical_refs: Sequence[str],
    authored: dt.datetime,
    order_id: str | None,
    owner: dict[str, Any] | None,
    location_id: str | None,
    requester: dict[str, Any],
) -> dict[str, Any]:
    """The acknowledgement item of a critical result (``critical_refs``: the critical
    Observations' fullUrls)."""
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "priority": "stat",
        "code": {
            "coding": [
                {
                    "system": TASK_CODE_SYSTEM,
                    "code": ACKNOWLEDGE_CRITICAL,
                    "display": "Acknowledge critical result",
                }
            ]
        },
        "focus": {"reference": report_ref},
        "for": {"reference": f"Patient/{patient_id}"},
        "authoredOn": instant(authored),
        "lastModified": instant(authored),
        "requester": requester,
        "input": [
            {"type": _task_concept(CRITICAL_INPUT), "valueReference": {"reference": ref}}
            for ref in critical_refs
        ],
    }
    if order_id is not None:
        resource["basedOn"] = [{"reference": f"ServiceRequest/{order_id}"}]
    if owner is not None:
        resource["owner"] = owner
    if location_id is not None:
        resource["location"] = {"reference": f"Location/{location_id}"}
    return resource


def completed_task(
    task: dict[str, Any], *, who: dict[str, Any], when: dt.datetime, comment: str | None
) -> dict[str, Any]:
    """``task`` acknowledged: completed, who and when as outputs, the comment as a note."""
    done = dict(task)
    stamp = instant(when)
    done["status"] = "completed"
    done["lastModified"] = stamp
    start = task.get("authoredOn")
    done["executionPeriod"] = (
        {"start": start, "end": stamp} if isinstance(start, str) else {"end": stamp}
    )
    done["output"] = [
        {"type": _task_concept(ACK_OUTPUT_BY), "valueReference": who},
        {"type": _task_concept(ACK_OUTPUT_AT), "valueDateTime": stamp},
    ]
    done["note"] = [
        *(task.get("note") or []),
        {"authorReference": who, "time": stamp, "text": comment or "Acknowledged"},
    ]
    return done
