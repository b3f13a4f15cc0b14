"""Orders as the API shows them, and the order's id in the API (``<Type>-<FHIR id>``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ehr.core.errors import NotFoundError
from ehr.fhir import codings, concept_text, reference_parts, version_id
from ehr.modules.clinical_record import Recorder, SortKey, newest_first
from ehr.modules.orders.drafts import (
    CATEGORY_IMAGING,
    CATEGORY_LAB,
    CATEGORY_REFERRAL,
    KIND_TAG_SYSTEM,
)
from ehr.modules.orders.lifecycle import SERVICE_REQUEST_STATUS_REASON, api_status
from ehr.modules.orders.schemas import CodingOut, Order, OrderKind

__all__ = [
    "ORDER_TYPES",
    "api_id",
    "is_order_of",
    "kind_of",
    "order_sort_key",
    "parse_order_id",
    "to_order",
]

ORDER_TYPES: Final = ("ServiceRequest", "MedicationRequest")
_CATEGORY_KIND: Final[Mapping[str, OrderKind]] = {
    CATEGORY_LAB[0]: "lab",
    CATEGORY_IMAGING[0]: "imaging",
    CATEGORY_REFERRAL[0]: "referral",
}


def parse_order_id(order_id: str) -> tuple[str, str]:
    """``("ServiceRequest", "123")`` from ``ServiceRequest-123`` (404 for anything else)."""
    resource_type, _, fhir_id = order_id.partition("-")
    if resource_type not in ORDER_TYPES or not fhir_id:
        raise NotFoundError("No such order")
    return resource_type, fhir_id


def api_id(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}-{resource.get('id')}"


def kind_of(resource: Mapping[str, Any]) -> OrderKind | None:
    """The order's kind: a MedicationRequest is a medication order; a ServiceRequest's kind is
    our tag, else its category."""
    if resource.get("resourceType") == "MedicationRequest":
        return "medication"
    meta = resource.get("meta")
    for tag in meta.get("tag") or [] if isinstance(meta, Mapping) else []:
        if isinstance(tag, Mapping) and tag.get("system") == KIND_TAG_SYSTEM:
            code = tag.get("code")
            if code in ("lab", "imaging", "referral"):
                return code  # type: ignore[no-any-return]
    for category in resource.get("category") or []:
        for coding in codings(category):
            if coding.code in _CATEGORY_KIND:
                return _CATEGORY_KIND[coding.code]
    return None


def is_order_of(resource: Mapping[str, Any], patient_id: str) -> bool:
    subject = resource.get("subject")
    parts = reference_parts(subject.get("reference") if isinstance(subject, Mapping) else None)
    return parts is not None and (parts.resource_type, parts.resource_id) == (
        "Patient",
        patient_id,
    )


def order_sort_key(resource: Mapping[str, Any]) -> SortKey:
    """Newest authored first; the reference breaks ties (the list's paging position)."""
    return (*newest_first(resource.get("authoredOn")), api_id(resource))


def _coding_out(concept: object) -> CodingOut | None:
    first = codings(concept, limit=1)
    if not first:
        return None
    return CodingOut(system=first[0].system, code=first[0].code, display=first[0].display)


def _concepts(value: object) -> list[dict[str, object]]:
    shown: list[dict[str, object]] = []
    for concept in value if isinstance(value, list) else []:
        coded = _coding_out(concept)
        if coded is not None:
            shown.append(coded.model_dump(exclude_none=True))
    return shown


def _status_reason(resource: Mapping[str, Any]) -> str | None:
    reason = resource.get("statusReason")
    if isinstance(reason, Mapping):
        return concept_text(reason)
    for extension in resource.get("extension") or []:
        if isinstance(extension, Mapping) and extension.get("url") == SERVICE_REQUEST_STATUS_REASON:
            return concept_text(extension.get("valueCodeableConcept"))
    return None


def _requester(resource: Mapping[str, Any]) -> Recorder | None:
    who = resource.get("requester")
    if not isinstance(who, Mapping):
        return None
    ident = who.get("identifier")
    value = ident.get("value") if isinstance(ident, Mapping) else None
    display = who.get("display")
    return Recorder(
        user_id=value if isinstance(value, str) else None,
        display=display if isinstance(display, str) else None,
    )


def _detail(resource: Mapping[str, Any]) -> dict[str, object]:
    detail: dict[str, object] = {}
    reasons = _concepts(resource.get("reasonCode"))
    if reasons:
        detail["reason"] = reasons
    if resource.get("resourceType") == "MedicationRequest":
        dosage = resource.get("dosageInstruction")
        if isinstance(dosage, list) and dosage:
            detail["dosage_instruction"] = dosage[0]
        dispense = resource.get("dispenseRequest")
        if isinstance(dispense, Mapping):
            detail["dispense_request"] = dict(dispense)
        return detail
    sites = _concepts(resource.get("bodySite"))
    if sites:
        detail["body_site"] = sites[0]
    specialty = _coding_out(resource.get("performerType"))
    if specialty is not None:
        detail["specialty"] = specialty.model_dump(exclude_none=True)
    performers = resource.get("performer")
    if isinstance(performers, list) and performers:
        detail["performer"] = performers[0]
    if isinstance(resource.get("occurrenceDateTime"), str):
        detail["occurrence"] = resource["occurrenceDateTime"]
    return detail


def to_order(resource: Mapping[str, Any], patient_id: str) -> Order:
    """The business view of an order resource."""
    concept = resource.get(
        "medicationCodeableConcept"
        if resource.get("resourceType") == "MedicationRequest"
        else "code"
    )
    encounter = resource.get("encounter")
    encounter_parts = reference_parts(
        encounter.get("reference") if isinstance(encounter, Mapping) else None
    )
    authored = resource.get("authoredOn")
    priority = resource.get("priority")
    return Order(
        id=api_id(resource),
        resource=f"{resource.get('resourceType')}/{resource.get('id')}",
        version=version_id(resource),
        kind=kind_of(resource),
        status=api_status(resource),
        intent=resource.get("intent") if isinstance(resource.get("intent"), str) else None,
        patient_id=patient_id,
        encounter_id=encounter_parts.resource_id if encounter_parts is not None else None,
        code=_coding_out(concept),
        text=concept_text(concept),
        priority=priority if isinstance(priority, str) else None,
        authored_on=authored if isinstance(authored, str) else None,
        requester=_requester(resource),
        status_reason=_status_reason(resource),
        detail=_detail(resource),
    )
