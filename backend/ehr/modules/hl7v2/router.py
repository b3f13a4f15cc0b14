"""``/api/hl7v2``: HL7 v2 over HTTP, the inbox and the sender registrations (ADR 0033).

``POST /api/hl7v2/messages`` takes what the MLLP listener takes (one message or a batch, ER7)
from an engine that speaks HTTP, with an API key holding ``hl7:send``; the answer is the ACK
(``x-application/hl7-v2+er7``), HTTP 200 whatever its code — an AR is the HL7 answer, not an
HTTP error. The sender must be registered to the key's tenant.

The inbox and registrations need ``hl7:manage``. Message bodies and patient identifiers are
PHI: every listing and read is on the audit trail.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.exc import IntegrityError

from ehr.core.db.models import Hl7Destination, Hl7Message, Hl7OutboundMessage, Hl7Sender
from ehr.core.dependencies import ResourcesDep, SessionDep
from ehr.core.error_handlers import problem_responses
from ehr.core.errors import ConflictError, UnsupportedMediaType
from ehr.core.intake import IntakeRoute, media_type_of
from ehr.modules.hl7v2 import destinations, inbox
from ehr.modules.hl7v2.conversion import replay
from ehr.modules.hl7v2.outbound import OutboundNotFoundError, replay_outbound
from ehr.modules.hl7v2.routing import register_sender
from ehr.modules.hl7v2.schemas import (
    DestinationCreate,
    DestinationList,
    DestinationOut,
    MessageDetail,
    MessageList,
    MessageOut,
    MessageStatus,
    OutboundList,
    OutboundOut,
    OutboundStatus,
    ReplayOut,
    SenderCreate,
    SenderList,
    SenderOut,
    SenderUpdate,
)
from ehr.modules.hl7v2.service import receive_payload
from ehr.platform.audit.dependencies import PhiAudit, record_principal_event
from ehr.platform.auth.authorization import RequirePermission
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal

__all__ = [
    "ER7_MEDIA_TYPE",
    "destination_out",
    "message_out",
    "outbound_out",
    "router",
    "sender_out",
]

router = APIRouter(prefix="/api/hl7v2", tags=["hl7v2"], route_class=IntakeRoute)

ER7_MEDIA_TYPE = "x-application/hl7-v2+er7"
_ACCEPTED_MEDIA = frozenset({ER7_MEDIA_TYPE, "application/hl7-v2", "text/plain"})

Sender = Annotated[Principal, RequirePermission(Permission.HL7_SEND)]
Manager = Annotated[Principal, RequirePermission(Permission.HL7_MANAGE)]


class SenderRouteTakenError(ConflictError):
    """Raised when another registration has the same MSH-3/4/5/6 route."""

    code = "hl7_sender_route_taken"
    title = "This sender route is already registered"


def sender_out(sender: Hl7Sender) -> SenderOut:
    fields: dict[str, Any] = {
        name: getattr(sender, name) for name in SenderOut.model_fields if name != "enabled"
    }
    return SenderOut(**fields, enabled=sender.disabled_at is None)


class DestinationNameTakenError(ConflictError):
    """Raised when the tenant already has a destination of this name."""

    code = "hl7_destination_name_taken"
    title = "This destination name is taken"


def destination_out(destination: Hl7Destination) -> DestinationOut:
    fields: dict[str, Any] = {
        name: getattr(destination, name)
        for name in DestinationOut.model_fields
        if name != "enabled"
    }
    return DestinationOut(**fields, enabled=destination.disabled_at is None)


def outbound_out(row: Hl7OutboundMessage) -> OutboundOut:
    return OutboundOut.model_validate(
        {name: getattr(row, name) for name in OutboundOut.model_fields}
    )


def message_out(row: Hl7Message) -> MessageOut:
    return MessageOut.model_validate({name: getattr(row, name) for name in MessageOut.model_fields})


def message_detail(row: Hl7Message) -> MessageDetail:
    return MessageDetail.model_validate(
        {name: getattr(row, name) for name in MessageDetail.model_fields}
    )


_ER7_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "One HL7 v2 message or a batch (FHS/BHS), ER7 encoding.",
        "content": {
            ER7_MEDIA_TYPE: {"schema": {"type": "string", "maxLength": 64 * 1024 * 1024}},
        },
    }
}


@router.post(
    "/messages",
    response_class=Response,
    responses={
        200: {
            "description": "The acknowledgement (MSA-1 AA/AE/AR, or CA/CE/CR in enhanced mode).",
            "content": {ER7_MEDIA_TYPE: {"schema": {"type": "string"}}},
        },
        204: {"description": "Stored; MSH-15 asked for no acknowledgement in this case."},
        **problem_responses(401, 403, 413, 415, 503),
    },
    openapi_extra=_ER7_BODY,
)
async def receive_hl7_message(
    request: Request, principal: Sender, resources: ResourcesDep, audit: PhiAudit
) -> Response:
    """Receive HL7 v2 over HTTP: stored before the ACK is answered, duplicates (same sender and
    MSH-10) answered with the stored ACK. Media types: `x-application/hl7-v2+er7`,
    `application/hl7-v2` or `text/plain`; the charset parameter or MSH-18 names the encoding."""
    media = media_type_of(request.headers.get("content-type"))
    if media not in _ACCEPTED_MEDIA:
        raise UnsupportedMediaType(
            f"This route takes {ER7_MEDIA_TYPE}, not {media or 'no Content-Type'}",
            extra={"accepted": sorted(_ACCEPTED_MEDIA)},
        )
    body = await request.body()
    answer = await receive_payload(
        resources.sessionmaker,
        resources.settings,
        body,
        channel="http",
        caller_tenant=principal.tenant_id,
    )
    for reception in answer.receptions:
        if reception.message_id is not None:
            audit.access(
                "hl7v2:receive",
                resource_type="Hl7Message",
                resource_id=str(reception.message_id),
                details={"ack": reception.code, "duplicate": reception.duplicate},
            )
    if answer.ack is None:
        return Response(status_code=204)
    return Response(content=answer.ack.encode("utf-8"), media_type=ER7_MEDIA_TYPE)


@router.get(
    "/messages", response_model=MessageList, responses=problem_responses(400, 401, 403, 422, 503)
)
async def list_hl7_messages(
    principal: Manager,
    session: SessionDep,
    audit: PhiAudit,
    control_id: Annotated[str | None, Query(max_length=199, description="MSH-10.")] = None,
    patient: Annotated[
        str | None, Query(max_length=500, description="`system|value`, or a PID-3 value.")
    ] = None,
    status: MessageStatus | None = None,
    sender_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> MessageList:
    """The tenant's received messages, newest first (without bodies)."""
    page = await inbox.list_messages(
        session,
        principal.tenant_id,
        control_id=control_id,
        patient=patient,
        status=status,
        sender_id=sender_id,
        limit=limit,
        cursor=cursor,
    )
    audit.access(
        "hl7v2:list",
        resource_type="Hl7Message",
        details={"count": len(page.items), "status": status, "by_patient": patient is not None},
    )
    return MessageList(items=[message_out(row) for row in page.items], next_cursor=page.next_cursor)


@router.get(
    "/messages/{message_id}",
    response_model=MessageDetail,
    responses=problem_responses(401, 403, 404, 503),
)
async def read_hl7_message(
    message_id: uuid.UUID, principal: Manager, session: SessionDep, audit: PhiAudit
) -> MessageDetail:
    """One message with its body and acknowledgements (PHI)."""
    row = await inbox.get_message(session, principal.tenant_id, message_id)
    audit.access("hl7v2:read", resource_type="Hl7Message", resource_id=str(row.id))
    return message_detail(row)


@router.post(
    "/messages/{message_id}/replay",
    response_model=ReplayOut,
    responses=problem_responses(401, 403, 404, 503),
)
async def replay_hl7_message(
    message_id: uuid.UUID,
    principal: Manager,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> ReplayOut:
    """Convert the message again (a dead letter after a fix; a converted one is rewritten with
    the same identifiers, so nothing is duplicated)."""
    row = await inbox.get_message(session, principal.tenant_id, message_id)
    queued = await replay(session, tenant_id=principal.tenant_id, message_ids=[row.id])
    await _security_event(resources, principal, request, "hl7v2:replay", "Hl7Message", row.id)
    return ReplayOut(queued=queued)


@router.get("/senders", response_model=SenderList, responses=problem_responses(401, 403, 503))
async def list_hl7_senders(principal: Manager, session: SessionDep) -> SenderList:
    """The tenant's registered senders."""
    return SenderList(
        items=[sender_out(s) for s in await inbox.list_senders(session, principal.tenant_id)]
    )


@router.post(
    "/senders",
    status_code=201,
    response_model=SenderOut,
    responses=problem_responses(401, 403, 409, 422, 503),
)
async def register_hl7_sender(
    body: SenderCreate,
    principal: Manager,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> SenderOut:
    """Register a sender for this tenant: its MSH-3/MSH-4 (and optionally MSH-5/6) route, the
    events it may send and where its application ACKs go. A route is registered once across
    tenants (409)."""
    if body.ack_destination_id is not None:
        await destinations.ack_destination(session, principal.tenant_id, body.ack_destination_id)
    async with _unique(
        session, SenderRouteTakenError("A sender with this MSH-3/4/5/6 route exists")
    ):
        sender = await register_sender(
            session,
            tenant_id=principal.tenant_id,
            name=body.name,
            sending_application=body.sending_application,
            sending_facility=body.sending_facility,
            receiving_application=body.receiving_application,
            receiving_facility=body.receiving_facility,
            message_types=body.message_types,
            processing_ids=body.processing_ids,
            ack_destination_id=body.ack_destination_id,
            created_by=f"{principal.kind}:{principal.subject}",
        )
    await _security_event(
        resources, principal, request, "hl7v2:sender_register", "Hl7Sender", sender.id, 201
    )
    return sender_out(sender)


@router.patch(
    "/senders/{sender_id}",
    response_model=SenderOut,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def update_hl7_sender(
    sender_id: uuid.UUID,
    body: SenderUpdate,
    principal: Manager,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> SenderOut:
    """Change where the sender's enhanced-mode application ACKs are sent (a destination that
    takes `ACK`; null: kept on the message only)."""
    sender = await inbox.set_ack_destination(
        session, principal.tenant_id, sender_id, body.ack_destination_id
    )
    await _security_event(
        resources, principal, request, "hl7v2:sender_update", "Hl7Sender", sender.id
    )
    return sender_out(sender)


@router.post(
    "/senders/{sender_id}/disable",
    response_model=SenderOut,
    responses=problem_responses(401, 403, 404, 503),
)
async def disable_hl7_sender(
    sender_id: uuid.UUID,
    principal: Manager,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> SenderOut:
    """Refuse this sender's messages from now on (AR); its messages stay in the inbox."""
    sender = await inbox.disable_sender(session, principal.tenant_id, sender_id)
    await _security_event(
        resources, principal, request, "hl7v2:sender_disable", "Hl7Sender", sender.id
    )
    return sender_out(sender)


@router.get(
    "/destinations", response_model=DestinationList, responses=problem_responses(401, 403, 503)
)
async def list_hl7_destinations(principal: Manager, session: SessionDep) -> DestinationList:
    """The tenant's outbound destinations (ORU^R01 results, ADT^A08 patient changes, senders'
    application ACKs)."""
    found = await destinations.list_destinations(session, principal.tenant_id)
    return DestinationList(items=[destination_out(d) for d in found])


@router.post(
    "/destinations",
    status_code=201,
    response_model=DestinationOut,
    responses=problem_responses(401, 403, 409, 422, 503),
)
async def register_hl7_destination(
    body: DestinationCreate,
    principal: Manager,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> DestinationOut:
    """Send this tenant's final results and/or patient changes to an MLLP receiver, in order,
    retried until acknowledged (a refusal parks the message)."""
    taken = DestinationNameTakenError("The tenant has a destination of this name")
    async with _unique(session, taken):
        destination = await destinations.register_destination(
            session,
            tenant_id=principal.tenant_id,
            name=body.name,
            host=body.host,
            port=body.port,
            tls=body.tls,
            message_types=body.message_types,
            receiving_application=body.receiving_application,
            receiving_facility=body.receiving_facility,
            created_by=f"{principal.kind}:{principal.subject}",
        )
    await _security_event(
        resources,
        principal,
        request,
        "hl7v2:destination_register",
        "Hl7Destination",
        destination.id,
        201,
    )
    return destination_out(destination)


@router.post(
    "/destinations/{destination_id}/disable",
    response_model=DestinationOut,
    responses=problem_responses(401, 403, 404, 503),
)
async def disable_hl7_destination(
    destination_id: uuid.UUID,
    principal: Manager,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> DestinationOut:
    """Stop sending to this destination (its queue waits)."""
    destination = await destinations.disable_destination(
        session, principal.tenant_id, destination_id
    )
    await _security_event(
        resources,
        principal,
        request,
        "hl7v2:destination_disable",
        "Hl7Destination",
        destination.id,
    )
    return destination_out(destination)


@router.get(
    "/outbound", response_model=OutboundList, responses=problem_responses(401, 403, 422, 503)
)
async def list_hl7_outbound(
    principal: Manager,
    session: SessionDep,
    status: OutboundStatus | None = None,
    destination_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> OutboundList:
    """Outbound messages, newest first (without bodies): delivery state and ACK codes."""
    rows = await destinations.list_outbound(
        session, principal.tenant_id, status=status, destination_id=destination_id, limit=limit
    )
    return OutboundList(items=[outbound_out(row) for row in rows])


@router.post(
    "/outbound/{message_id}/replay",
    response_model=ReplayOut,
    responses=problem_responses(401, 403, 404, 503),
)
async def replay_hl7_outbound(
    message_id: uuid.UUID,
    principal: Manager,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> ReplayOut:
    """Send a parked message again (in its place in the destination's order)."""
    queued = await replay_outbound(session, principal.tenant_id, [message_id])
    if not queued:
        raise OutboundNotFoundError("No parked outbound message with this id")
    await _security_event(
        resources, principal, request, "hl7v2:outbound_replay", "Hl7OutboundMessage", message_id
    )
    return ReplayOut(queued=queued)


@contextlib.asynccontextmanager
async def _unique(session: SessionDep, taken: ConflictError) -> AsyncIterator[None]:
    """A registration in a savepoint: a unique key it breaks is ``taken`` (409), the request's
    transaction stays usable."""
    try:
        async with session.begin_nested():
            yield
    except IntegrityError:
        raise taken from None


async def _security_event(
    resources: ResourcesDep,
    principal: Principal,
    request: Request,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID,
    http_status: int = 200,
) -> None:
    await record_principal_event(
        resources.sessionmaker,
        principal,
        request,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id),
        http_status=http_status,
    )
