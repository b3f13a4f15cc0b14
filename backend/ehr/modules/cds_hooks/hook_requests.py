"""A CDS Hooks call's request: checked before any work is done on it, and read.

:func:`parse_request` checks the call against the spec and the hook's context (400 with a clear
message) and refuses a call larger than any clinical workflow needs; :func:`parse_feedback` the
feedback body. Readers of a checked call: the patient in context, the orders of each order-like
hook (:func:`order_drafts`: ``draftOrders``, or the legacy hooks' ``medications`` / ``orders``,
and order-select's ``selections``) and the allergies being recorded (:func:`new_allergies`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import ValidationError

from ehr.core.errors import BadRequestError
from ehr.core.intake import parse_json
from ehr.fhir import bundle_resources
from ehr.modules.cds_hooks.definitions import ServiceDefinition
from ehr.modules.cds_hooks.schemas import (
    MAX_DRAFT_ORDERS,
    MAX_PREFETCH_ENTRIES,
    MAX_SELECTIONS,
    CdsRequest,
    FeedbackRequest,
)

__all__ = [
    "new_allergies",
    "order_drafts",
    "parse_feedback",
    "parse_request",
    "patient_id_of",
]


def _validation_message(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        location = ".".join(str(p) for p in item.get("loc", ()))
        message = str(item.get("msg", "invalid"))
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)[:1000]


def _json_object(body: bytes | Any) -> dict[str, Any]:
    """The call's JSON object: ``body`` as sent (parsed by the intake rules) or already parsed."""
    document = parse_json(body) if isinstance(body, bytes) else body
    if not isinstance(document, dict):
        raise BadRequestError("The request body must be a JSON object")
    return document


def _entry_count(value: object) -> int:
    if isinstance(value, dict):
        entries = value.get("entry")
        return len(entries) if isinstance(entries, list) else 0
    return len(value) if isinstance(value, list) else 0


def _check_bounds(document: Mapping[str, Any]) -> None:
    """Refuse a call larger than any clinical workflow needs, before any work is done on it.

    The work of a call grows with its orders (pairs of drugs) and prefetched entries: these
    counts are capped (:data:`~ehr.modules.cds_hooks.schemas.MAX_DRAFT_ORDERS` ...).
    """
    context = document.get("context")
    if isinstance(context, dict):
        for name in ("draftOrders", "medications", "orders"):
            count = _entry_count(context.get(name))
            if count > MAX_DRAFT_ORDERS:
                raise BadRequestError(
                    f"context.{name} holds {count} orders; at most {MAX_DRAFT_ORDERS} are "
                    "checked in one call",
                    extra={"limit": MAX_DRAFT_ORDERS},
                )
        selections = context.get("selections")
        if isinstance(selections, list) and len(selections) > MAX_SELECTIONS:
            raise BadRequestError(
                f"context.selections holds {len(selections)} references; at most {MAX_SELECTIONS}",
                extra={"limit": MAX_SELECTIONS},
            )
        allergies = context.get("allergyIntolerances")
        if _entry_count(allergies) > MAX_DRAFT_ORDERS:
            raise BadRequestError(
                f"context.allergyIntolerances holds more than {MAX_DRAFT_ORDERS} entries",
                extra={"limit": MAX_DRAFT_ORDERS},
            )
    prefetch = document.get("prefetch")
    if isinstance(prefetch, dict):
        for key, value in prefetch.items():
            count = _entry_count(value) if isinstance(value, dict) else 0
            if count > MAX_PREFETCH_ENTRIES:
                raise BadRequestError(
                    f"prefetch.{str(key)[:64]} holds {count} entries; at most "
                    f"{MAX_PREFETCH_ENTRIES} per prefetched Bundle",
                    extra={"limit": MAX_PREFETCH_ENTRIES},
                )


def parse_request(body: bytes | Any, definition: ServiceDefinition) -> CdsRequest:
    """The call, checked against the spec and the hook's context (400 with a clear message)."""
    document = _json_object(body)
    missing = [name for name in ("hook", "hookInstance", "context") if name not in document]
    if missing:
        raise BadRequestError(f"Missing required field(s): {', '.join(missing)}")
    _check_bounds(document)
    try:
        request = CdsRequest.model_validate(document)
    except ValidationError as exc:
        raise BadRequestError(f"Invalid CDS Hooks request: {_validation_message(exc)}") from None
    if request.hook != definition.hook:
        raise BadRequestError(
            f"hook {request.hook!r} does not match service {definition.id!r}, "
            f"which answers {definition.hook!r}"
        )
    for name, expected in definition.context.items():
        value = request.context.get(name)
        if value is None:
            raise BadRequestError(f"context.{name} is required for hook {definition.hook!r}")
        if not isinstance(value, expected) or (isinstance(value, str) and not value.strip()):
            raise BadRequestError(f"context.{name} has the wrong type for hook {definition.hook!r}")
    draft = request.context.get("draftOrders")
    if draft is not None and (not isinstance(draft, dict) or draft.get("resourceType") != "Bundle"):
        raise BadRequestError("context.draftOrders must be a FHIR Bundle")
    selections = request.context.get("selections")
    if selections is not None and not all(isinstance(s, str) for s in selections):
        raise BadRequestError("context.selections must be a list of references")
    return request


def parse_feedback(body: bytes | Any) -> FeedbackRequest:
    document = _json_object(body)
    try:
        return FeedbackRequest.model_validate(document)
    except ValidationError as exc:
        raise BadRequestError(f"Invalid CDS Hooks feedback: {_validation_message(exc)}") from None


# --------------------------------------------------------------------------- reading a call


def patient_id_of(request: CdsRequest) -> str:
    """The ``context.patientId`` of the call (``""`` when absent)."""
    value = request.context.get("patientId")
    return str(value) if value is not None else ""


# Context field holding the orders of each order-like hook (default draftOrders).
_DRAFTS_FIELD: Final = {
    "medication-prescribe": "medications",
    "medication-refill": "medications",
    "order-review": "orders",
}


def order_drafts(hook: str, request: CdsRequest) -> tuple[list[dict[str, Any]], set[str] | None]:
    """The draft orders of an order-like hook, and (order-select) the selected references."""
    drafts = _legacy_medications(request.context.get(_DRAFTS_FIELD.get(hook, "draftOrders")))
    selected: set[str] | None = None
    if hook == "order-select":
        selected = {str(s) for s in request.context.get("selections") or []}
    return drafts, selected


def new_allergies(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    single = context.get("allergyIntolerance")
    if isinstance(single, dict) and isinstance(single.get("resource"), dict):
        single = single["resource"]  # some published examples wrap it like a Bundle entry
    if isinstance(single, dict) and single.get("resourceType") == "AllergyIntolerance":
        return [single]
    return [
        r
        for r in _legacy_medications(context.get("allergyIntolerances"))
        if r.get("resourceType") == "AllergyIntolerance"
    ]


def _legacy_medications(value: object) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict) and isinstance(v.get("resourceType"), str)]
    return bundle_resources(value)
