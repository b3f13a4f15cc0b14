"""Reading a chart entry off any FHIR resource the chart shows: its clinical date (what the
views order by), its display, status, value and interpretation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ehr.fhir import codings, concept_text, parse_fhir_date
from ehr.modules.chart.schemas import ChartEntry

__all__ = [
    "ABNORMAL_INTERPRETATIONS",
    "clinical_date",
    "display_of",
    "sort_instant",
    "status_of",
    "to_entry",
]

# HL7 v3 ObservationInterpretation codes that flag a result as outside its reference range.
ABNORMAL_INTERPRETATIONS: Final = frozenset(
    {"A", "AA", "H", "HH", "HU", "L", "LL", "LU", "<", ">", "W", "IE", "POS", "DET", "R"}
)


def clinical_date(resource: Mapping[str, Any]) -> str | None:
    """The date a resource is placed at in the chart (FHIR date/dateTime as written)."""
    resource_type = resource.get("resourceType")
    candidates: Sequence[object]
    if resource_type == "Encounter":
        period = resource.get("period")
        candidates = [period.get("start") if isinstance(period, Mapping) else None]
    elif resource_type == "Condition" or resource_type == "AllergyIntolerance":
        candidates = [resource.get("onsetDateTime"), resource.get("recordedDate")]
    elif resource_type in {"Observation", "DiagnosticReport"}:
        period = resource.get("effectivePeriod")
        candidates = [
            resource.get("effectiveDateTime"),
            period.get("start") if isinstance(period, Mapping) else None,
            resource.get("issued"),
        ]
    elif resource_type in {"MedicationRequest", "ServiceRequest"}:
        candidates = [resource.get("authoredOn")]
    elif resource_type == "MedicationStatement":
        period = resource.get("effectivePeriod")
        candidates = [
            resource.get("effectiveDateTime"),
            period.get("start") if isinstance(period, Mapping) else None,
            resource.get("dateAsserted"),
        ]
    elif resource_type == "DocumentReference":
        candidates = [resource.get("date")]
    elif resource_type == "Appointment":
        candidates = [resource.get("start")]
    elif resource_type == "CareTeam":
        period = resource.get("period")
        candidates = [period.get("start") if isinstance(period, Mapping) else None]
    else:
        candidates = []
    return next((value for value in candidates if isinstance(value, str) and value), None)


def sort_instant(value: str | None) -> str | None:
    """``value`` as a sortable UTC instant (a partial date at its start); None if not a date."""
    parsed = parse_fhir_date(value)
    if parsed is None:
        return None
    return parsed.start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def concept_of(resource: Mapping[str, Any]) -> object:
    for name in ("code", "medicationCodeableConcept", "type", "serviceType", "category"):
        value = resource.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if value:
            return value
    return None


def display_of(resource: Mapping[str, Any]) -> str | None:
    if resource.get("resourceType") == "CareTeam" and isinstance(resource.get("name"), str):
        return str(resource["name"])
    if resource.get("resourceType") == "Appointment" and isinstance(
        resource.get("description"), str
    ):
        return str(resource["description"])
    concept = concept_of(resource)
    text = concept_text(concept)
    if text:
        return text
    reference = resource.get("medicationReference")
    if isinstance(reference, Mapping) and isinstance(reference.get("display"), str):
        return str(reference["display"])
    return None


def status_of(resource: Mapping[str, Any]) -> str | None:
    for name in ("clinicalStatus", "docStatus"):
        value = resource.get(name)
        first = codings(value, limit=1) if isinstance(value, Mapping) else []
        if first:
            return first[0].code
        if isinstance(value, str):
            return value
    status = resource.get("status")
    return status if isinstance(status, str) else None


def _quantity(value: object) -> str | None:
    if not isinstance(value, Mapping) or value.get("value") is None:
        return None
    unit = value.get("unit") or value.get("code") or ""
    return f"{value['value']} {unit}".strip()


def _value(resource: Mapping[str, Any]) -> str | None:
    if resource.get("resourceType") != "Observation":
        return None
    quantity = _quantity(resource.get("valueQuantity"))
    if quantity is not None:
        return quantity
    if isinstance(resource.get("valueString"), str):
        return str(resource["valueString"])
    concept = concept_text(resource.get("valueCodeableConcept"))
    if concept:
        return concept
    parts = [
        _quantity(component.get("valueQuantity"))
        for component in resource.get("component") or []
        if isinstance(component, Mapping)
    ]
    values = [part.split(" ", 1) for part in parts if part]
    if values and len({tuple(v[1:]) for v in values}) == 1:
        unit = values[0][1] if len(values[0]) > 1 else ""
        return f"{'/'.join(v[0] for v in values)} {unit}".strip()
    return ", ".join(part for part in parts if part) or None


def _interpretation(resource: Mapping[str, Any]) -> str | None:
    concepts = resource.get("interpretation")
    for concept in concepts if isinstance(concepts, list) else []:
        first = codings(concept, limit=1)
        if first and first[0].code:
            return first[0].code
    return None


def to_entry(resource: Mapping[str, Any]) -> ChartEntry:
    """A summary entry for ``resource``."""
    first = codings(concept_of(resource), limit=1)
    code = f"{first[0].system or ''}|{first[0].code}" if first and first[0].code else None
    interpretation = _interpretation(resource)
    return ChartEntry(
        resource_type=str(resource.get("resourceType", "")),
        id=str(resource.get("id", "")),
        display=display_of(resource),
        code=code,
        status=status_of(resource),
        date=clinical_date(resource),
        value=_value(resource),
        interpretation=interpretation,
        abnormal=interpretation in ABNORMAL_INTERPRETATIONS,
    )
