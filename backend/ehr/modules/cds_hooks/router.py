"""``/cds-services``: CDS Hooks 2.0.1 discovery, services and feedback, at the root as the spec
places them (thin: authenticate, parse, call, audit, answer).

Every call — discovery included — must carry the client's signed JWT (``client_auth``): 401
otherwise. A malformed call (bad JSON, a missing hook/hookInstance/context, a hook that does not
match the service, fhirAuthorization without fhirServer, a context missing what the hook
requires) → 400 problem+json naming what is wrong; data the service needs that was neither
prefetched nor fetchable → 412; HAPI unavailable → 503. Never a 500 for what the client sent.

Audit: discovery ``cds:discovery``; a service call ``cds:{hook}`` on the patient in context
(details: service, hookInstance, cards, suppressed, prefetch keys sent/fetched, data source);
feedback ``cds:feedback`` (details: service, items stored). The actor is the CDS client.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from ehr.core.dependencies import ResourcesDep
from ehr.core.error_handlers import problem_responses
from ehr.core.intake import (
    JSON_MEDIA_TYPES,
    IntakeRoute,
    max_json_depth,
    read_json,
    require_media_type,
)
from ehr.core.openapi_document import json_request_body
from ehr.modules.cds_hooks.client_auth import CdsClientDep
from ehr.modules.cds_hooks.definitions import SERVICES, discovery, service_definition
from ehr.modules.cds_hooks.dependencies import CdsAuditDep, CdsHooksServiceDep
from ehr.modules.cds_hooks.feedback import store_feedback
from ehr.modules.cds_hooks.hook_requests import parse_feedback, parse_request
from ehr.modules.cds_hooks.schemas import CdsRequest, CdsResponse, Discovery, FeedbackRequest

__all__ = ["CDS_SERVICES_PATH", "router"]

CDS_SERVICES_PATH: Final = "/cds-services"

router = APIRouter(prefix=CDS_SERVICES_PATH, tags=["cds-hooks"], route_class=IntakeRoute)

# Any id is answered (404 for one we do not serve); the examples are the services we do.
ServiceId = Annotated[
    str,
    Path(
        pattern=r"^[a-z0-9][a-z0-9\-]{0,63}$",
        max_length=64,
        examples=sorted(SERVICES),
        description="A service id from discovery (`GET /cds-services`).",
    ),
]


async def _document(request: Request) -> Any:
    """The body by the intake rules: ``application/json`` (else 415), strict JSON (else 400)."""
    require_media_type(
        request.headers.get("content-type"), JSON_MEDIA_TYPES, allow_json_suffix=False
    )
    return await read_json(await request.body(), max_depth=max_json_depth(request))


def _json(model: Discovery | CdsResponse | dict[str, Any]) -> JSONResponse:
    if isinstance(model, dict):
        return JSONResponse(model)
    return JSONResponse(model.model_dump(mode="json", by_alias=True, exclude_none=True))


@router.get(
    "",
    response_model=Discovery,
    response_model_exclude_none=True,
    responses=problem_responses(401, 503),
)
async def discover(client: CdsClientDep, audit: CdsAuditDep) -> JSONResponse:
    """The services this server offers, with their hooks and prefetch templates."""
    audit.access("cds:discovery", details={"client": client.name[:64]})
    return _json(discovery())


@router.post(
    "/{service_id}",
    response_model=CdsResponse,
    response_model_exclude_none=True,
    responses=problem_responses(400, 401, 404, 412, 413, 503),
    openapi_extra=json_request_body(CdsRequest, "A CDS Hooks 2.0 call (application/json)."),
)
async def call_service(
    service_id: ServiceId,
    request: Request,
    service: CdsHooksServiceDep,
    audit: CdsAuditDep,
) -> JSONResponse:
    """Answer a hook call with cards (and system actions)."""
    definition = service_definition(service_id)
    call = parse_request(await _document(request), definition)
    patient_id = str(call.context.get("patientId") or "")[:64] or None
    details: dict[str, Any] = {
        "service": definition.id,
        "hook_instance": str(call.hook_instance),
    }
    note = audit.access(
        f"cds:{definition.hook}",
        resource_type="Patient" if patient_id else None,
        resource_id=patient_id,
        patient_id=patient_id,
        details=details,
    )
    outcome = await service.call(definition, call)
    note.add_details(
        cards=len(outcome.issued),
        suppressed=outcome.suppressed,
        prefetch_sent=outcome.prefetch_sent,
        prefetch_fetched=outcome.prefetch_fetched,
        source=outcome.source,
    )
    return _json(outcome.response)


@router.post(
    "/{service_id}/feedback",
    responses=problem_responses(400, 401, 404, 413, 503),
    openapi_extra=json_request_body(FeedbackRequest, "CDS Hooks feedback (application/json)."),
)
async def feedback(
    service_id: ServiceId,
    request: Request,
    client: CdsClientDep,
    resources: ResourcesDep,
    audit: CdsAuditDep,
) -> JSONResponse:
    """Record what the clinician did with cards (accepted suggestions, override reasons)."""
    definition = service_definition(service_id)
    items = parse_feedback(await _document(request))
    details: dict[str, Any] = {"service": definition.id, "items": len(items.feedback)}
    note = audit.access("cds:feedback", details=details)
    stored = await store_feedback(
        resources.sessionmaker,
        resources.redis,
        client=client,
        definition=definition,
        feedback=items,
    )
    note.add_details(stored=stored.stored)
    return _json({"stored": stored.stored, "duplicates": stored.duplicates})
