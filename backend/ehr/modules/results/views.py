"""The API's documents of stored results: a report with its observations and, for a critical
one, its acknowledgement (whether it is escalated is computed here, at read time)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ehr.fhir import codings, parse_fhir_date, reference_parts, version_id
from ehr.modules.results.codes import (
    CRITICAL_INTERPRETATIONS,
    INTERPRETATION_SYSTEM,
    LOINC_SYSTEM,
)
from ehr.modules.results.resources import ACK_OUTPUT_AT, ACK_OUTPUT_BY
from ehr.modules.results.schemas import (
    Acknowledgement,
    CodeOut,
    ResultObservation,
    ResultReport,
)

__all__ = [
    "acknowledgement_of",
    "interpretation_of",
    "loinc_of",
    "observation_view",
    "ref_id",
    "report_view",
    "when",
]


def when(value: object) -> dt.datetime | None:
    """A FHIR dateTime/instant as an aware datetime (its start), or None."""
    parsed = parse_fhir_date(value if isinstance(value, str) else None)
    return parsed.start if parsed is not None else None


def ref_id(value: object, resource_type: str) -> str | None:
    """The id of a Reference to ``resource_type`` (None otherwise)."""
    parts = reference_parts(value)
    if parts is None or parts.resource_type != resource_type:
        return None
    return parts.resource_id


def loinc_of(resource: Mapping[str, Any]) -> tuple[str, str | None]:
    """The resource's first LOINC code and its display (or text)."""
    concept = resource.get("code")
    for coding in codings(concept):
        if coding.system == LOINC_SYSTEM:
            text = concept.get("text") if isinstance(concept, Mapping) else None
            return coding.code, coding.display or (text if isinstance(text, str) else None)
    return "", None


def interpretation_of(resource: Mapping[str, Any]) -> str | None:
    for concept in resource.get("interpretation") or []:
        for coding in codings(concept):
            if coding.system == INTERPRETATION_SYSTEM:
                return coding.code
    return None


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def observation_view(resource: Mapping[str, Any]) -> ResultObservation:
    code, display = loinc_of(resource)
    quantity = resource.get("valueQuantity")
    value = unit = None
    if isinstance(quantity, Mapping):
        value = _number(quantity.get("value"))
        raw_unit = quantity.get("code") or quantity.get("unit")
        unit = raw_unit if isinstance(raw_unit, str) else None
    coded = codings(resource.get("valueCodeableConcept"), limit=1)
    ranges = resource.get("referenceRange")
    first_range = ranges[0] if isinstance(ranges, list) and ranges else {}
    low = first_range.get("low") if isinstance(first_range, Mapping) else None
    high = first_range.get("high") if isinstance(first_range, Mapping) else None
    interpretation = interpretation_of(resource)
    text = resource.get("valueString")
    return ResultObservation(
        id=str(resource.get("id", "")),
        version=version_id(resource),
        code=code,
        display=display,
        status=str(resource.get("status", "")),
        effective=when(resource.get("effectiveDateTime")),
        value=value,
        unit=unit,
        coded=CodeOut(system=coded[0].system, code=coded[0].code, display=coded[0].display)
        if coded
        else None,
        text=text if isinstance(text, str) else None,
        reference_low=_number(low.get("value")) if isinstance(low, Mapping) else None,
        reference_high=_number(high.get("value")) if isinstance(high, Mapping) else None,
        interpretation=interpretation,
        critical=interpretation in CRITICAL_INTERPRETATIONS,
    )


def _output(task: Mapping[str, Any], code: str) -> Mapping[str, Any] | None:
    for output in task.get("output") or []:
        if isinstance(output, Mapping) and any(c.code == code for c in codings(output.get("type"))):
            return output
    return None


def acknowledgement_of(
    task: Mapping[str, Any], *, now: dt.datetime, escalation: dt.timedelta
) -> Acknowledgement:
    """The acknowledgement item as the API shows it; escalated = still open after the delay."""
    status = str(task.get("status", ""))
    requested = when(task.get("authoredOn"))
    by = _output(task, ACK_OUTPUT_BY)
    at = _output(task, ACK_OUTPUT_AT)
    who = by.get("valueReference") if by is not None else None
    display = who.get("display") if isinstance(who, Mapping) else None
    notes = [n for n in task.get("note") or [] if isinstance(n, Mapping)]
    comment = notes[-1].get("text") if notes and status == "completed" else None
    open_ = status not in {"completed", "cancelled", "entered-in-error", "failed", "rejected"}
    return Acknowledgement(
        task_id=str(task.get("id", "")),
        version=version_id(task),
        status=status,
        requested_at=requested,
        acknowledged_at=when(at.get("valueDateTime")) if at is not None else None,
        acknowledged_by=display if isinstance(display, str) else None,
        comment=comment if isinstance(comment, str) else None,
        escalated=open_ and requested is not None and now - requested > escalation,
    )


def report_view(
    report: Mapping[str, Any],
    patient_id: str,
    observations: Mapping[str, Mapping[str, Any]],
    task: Mapping[str, Any] | None,
    *,
    now: dt.datetime,
    escalation: dt.timedelta,
) -> ResultReport:
    """The report with the observations it references (``observations`` by ``Type/id``)."""
    code, display = loinc_of(report)
    shown = []
    for ref in report.get("result") or []:
        parts = reference_parts(ref)
        if parts is None:
            continue
        found = observations.get(f"{parts.resource_type}/{parts.resource_id}")
        if found is not None:
            shown.append(observation_view(found))
    performers = report.get("performer") or []
    performer = (
        performers[0].get("display") if performers and isinstance(performers[0], Mapping) else None
    )
    based_on = report.get("basedOn") or []
    conclusion = report.get("conclusion")
    return ResultReport(
        id=str(report.get("id", "")),
        version=version_id(report),
        patient_id=patient_id,
        order_id=ref_id(based_on[0], "ServiceRequest") if based_on else None,
        code=code,
        display=display,
        status=str(report.get("status", "")),
        effective=when(report.get("effectiveDateTime")),
        issued=when(report.get("issued")),
        performer=performer if isinstance(performer, str) else None,
        conclusion=conclusion if isinstance(conclusion, str) else None,
        critical=any(o.critical for o in shown) or task is not None,
        observations=shown,
        acknowledgement=acknowledgement_of(task, now=now, escalation=escalation)
        if task is not None
        else None,
    )
