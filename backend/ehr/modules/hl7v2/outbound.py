"""Outbound HL7 v2: FHIR changes → ORU^R01 / ADT^A08 to a tenant's MLLP destinations (ADR 0033).

Driven by the domain events (ADR 0023/0027): every ``fhir.changed`` of a DiagnosticReport
(final, amended, corrected, appended) or of a Patient reaches :func:`on_fhir_change` in the
worker. It reads that version of the resource (and what an ORU needs: the Patient, the
Observations, the order) from HAPI, builds the message once per destination that takes the
event, and queues it in ``hl7_outbound_messages`` — in the event's transaction, one row per
(destination, resource version), so a redelivered event queues nothing twice. A result that
came in from a destination's own system (``meta.source``) is not sent back to it.

``hl7v2.deliver`` (``delivery``) sends each destination's queue in order; ``replay_outbound``
sends parked messages again.

Enhanced-mode application acknowledgements (MSH-16) of an inbound message go back the same way:
:func:`queue_application_ack` queues the ACK (``message_type`` ``ACK``) for the destination the
sender's registration names, in the transaction that decided it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings, get_settings
from ehr.core.db.models import Hl7Destination, Hl7Message, Hl7OutboundMessage, Hl7Sender, Tenant
from ehr.core.errors import NotFoundError
from ehr.fhir import FhirClient, TenantFhirClient
from ehr.fhir.datatypes import reference_parts
from ehr.modules.hl7v2 import metrics
from ehr.modules.hl7v2.delivery import APPLICATION_ACK, wake_delivery
from ehr.modules.hl7v2.er7 import control_id as new_control_id
from ehr.modules.hl7v2.from_fhir import OutboundMappingError, adt_a08, oru_r01
from ehr.modules.hl7v2.parsing import MessageRejected, parse_message
from ehr.modules.hl7v2.routing import event_allowed
from ehr.platform import events

__all__ = [
    "APPLICATION_ACK",
    "HANDLERS",
    "OUTBOUND_EVENTS",
    "SOURCE_PREFIX",
    "DestinationNotFoundError",
    "OutboundNotFoundError",
    "on_fhir_change",
    "queue_application_ack",
    "queue_for",
    "replay_outbound",
    "source_of",
]

logger = structlog.get_logger(__name__)

OUTBOUND_EVENTS: Final = frozenset({"ORU_R01", "ADT_A08"})
_REPORTED: Final = frozenset({"final", "amended", "corrected", "appended"})
# meta.source of what an inbound message wrote: urn:ehr:hl7v2:<MSH-3>:<MSH-4> (conversion.py).
SOURCE_PREFIX: Final = "urn:ehr:hl7v2:"


class DestinationNotFoundError(NotFoundError):
    """Raised when no destination of the caller's tenant has this id."""

    code = "hl7_destination_not_found"
    title = "No such HL7 v2 destination"


class OutboundNotFoundError(NotFoundError):
    """Raised when no outbound message of the caller's tenant has this id."""

    code = "hl7_outbound_not_found"
    title = "No such outbound HL7 v2 message"


def source_of(application: str, facility: str) -> str:
    """The ``meta.source`` of what a sender's messages wrote (and a destination's system)."""
    return f"{SOURCE_PREFIX}{quote(application, safe='')}:{quote(facility, safe='')}"


# --- queueing: fhir.changed → rows ----------------------------------------------------------


async def on_fhir_change(
    session: AsyncSession, event: events.Event, settings: Settings | None = None
) -> None:
    """The ``hl7v2.outbound`` event handler: queue what this change means for destinations
    (``settings``: the process's unless given)."""
    if event.resource is None or event.data.get("operation") == "delete":
        return
    resource_type, _, resource_id = event.resource.partition("/")
    message_type = {"DiagnosticReport": "ORU_R01", "Patient": "ADT_A08"}.get(resource_type)
    if message_type is None:
        return
    tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == event.tenant))
    if tenant_id is None:
        return
    destinations = [
        d
        for d in await session.scalars(
            select(Hl7Destination).where(
                Hl7Destination.tenant_id == tenant_id, Hl7Destination.disabled_at.is_(None)
            )
        )
        if event_allowed(d.message_types, message_type)
    ]
    if not destinations:
        return
    settings = settings or get_settings()
    async with FhirClient(settings.fhir, http_backend=settings.fhir.http_backend) as fhir:
        tenant_fhir = fhir.for_tenant(event.tenant)
        if event.resource_version:
            resource = await tenant_fhir.vread(resource_type, resource_id, event.resource_version)
        else:
            resource = await tenant_fhir.read(resource_type, resource_id)
        if resource_type == "DiagnosticReport" and resource.get("status") not in _REPORTED:
            return
        version = str((resource.get("meta") or {}).get("versionId") or event.resource_version)
        source = f"{resource_type}/{resource_id}/_history/{version}"
        context = await _context(tenant_fhir, resource_type, resource)
    await queue_for(session, settings, tenant_id, destinations, message_type, source, context)


@dataclass(frozen=True)
class _Context:
    resource: dict[str, Any]
    patient: dict[str, Any] | None
    observations: list[dict[str, Any]]
    service_request: dict[str, Any] | None


async def _context(
    tenant_fhir: TenantFhirClient, resource_type: str, resource: dict[str, Any]
) -> _Context:
    if resource_type == "Patient":
        return _Context(resource, resource, [], None)
    patient = await _read_reference(tenant_fhir, resource.get("subject"), "Patient")
    observations = [
        found
        for found in [
            await _read_reference(tenant_fhir, ref, "Observation")
            for ref in resource.get("result") or ()
        ]
        if found is not None
    ]
    orders = resource.get("basedOn") or ()
    order = await _read_reference(tenant_fhir, orders[0], "ServiceRequest") if orders else None
    return _Context(resource, patient, observations, order)


async def _read_reference(
    tenant_fhir: TenantFhirClient, reference: object, expected: str
) -> dict[str, Any] | None:
    parts = reference_parts(reference)
    if parts is None or parts.resource_type != expected:
        return None
    try:
        return await tenant_fhir.read(expected, parts.resource_id)
    except NotFoundError:
        return None


def _origin(resource: Mapping[str, Any]) -> str:
    source = (resource.get("meta") or {}).get("source")
    return source.split("#", 1)[0] if isinstance(source, str) else ""


async def queue_for(
    session: AsyncSession,
    settings: Settings,
    tenant_id: uuid.UUID,
    destinations: Sequence[Hl7Destination],
    message_type: str,
    source: str,
    context: _Context,
) -> list[uuid.UUID]:
    """Build and queue the message for each destination (in the caller's transaction); the
    ids of the rows queued now (a (destination, source) already queued is skipped)."""
    queued: list[uuid.UUID] = []
    origin = _origin(context.resource)
    for destination in destinations:
        if origin and origin == source_of(
            destination.receiving_application, destination.receiving_facility
        ):
            continue  # it came from this system: not echoed back
        control = new_control_id()
        status, body, error = "pending", "", None
        try:
            body = _build(settings, destination, message_type, context, control)
        except OutboundMappingError as exc:
            status, error = "parked", f"cannot be built: {exc}"[:500]
        row_id = uuid.uuid4()
        inserted = await session.scalar(
            insert(Hl7OutboundMessage)
            .values(
                id=row_id,
                tenant_id=tenant_id,
                destination_id=destination.id,
                message_type=message_type,
                control_id=control,
                source=source[:200],
                body=body,
                status=status,
                last_error=error,
            )
            .on_conflict_do_nothing(constraint="uq_hl7_outbound_destination_source")
            .returning(Hl7OutboundMessage.id)
        )
        if inserted is None:
            continue
        queued.append(inserted)
        metrics.OUTBOUND.labels(message_type, "queued" if status == "pending" else "parked").inc()
        if status == "pending":
            await wake_delivery(session, destination)
    return queued


async def queue_application_ack(session: AsyncSession, message: Hl7Message) -> uuid.UUID | None:
    """Queue ``message.application_ack`` for the destination its sender's registration names
    (in the caller's transaction); the row's id, or ``None`` when there is nowhere to send it
    (no destination named, the destination disabled) — the ACK stays readable on the message."""
    ack = message.application_ack
    if not ack:
        return None
    destination_id = await session.scalar(
        select(Hl7Sender.ack_destination_id).where(Hl7Sender.id == message.sender_id)
    )
    if destination_id is None:
        return None
    destination = await session.get(Hl7Destination, destination_id)
    if destination is None or destination.disabled_at is not None:
        return None
    try:
        control = parse_message(ack).header.control_id
    except MessageRejected:  # pragma: no cover - built by acks.build_ack
        return None
    inserted = await session.scalar(
        insert(Hl7OutboundMessage)
        .values(
            id=uuid.uuid4(),
            tenant_id=message.tenant_id,
            destination_id=destination.id,
            message_type=APPLICATION_ACK,
            control_id=control[:20],
            # One row per ACK built: a replayed message's new ACK is sent too.
            source=f"Hl7Message/{message.id}/ack/{control}"[:200],
            body=ack,
            status="pending",
        )
        .on_conflict_do_nothing(constraint="uq_hl7_outbound_destination_source")
        .returning(Hl7OutboundMessage.id)
    )
    if inserted is not None:
        metrics.OUTBOUND.labels(APPLICATION_ACK, "queued").inc()
        await wake_delivery(session, destination)
    return inserted


def _build(
    settings: Settings,
    destination: Hl7Destination,
    message_type: str,
    context: _Context,
    control: str,
) -> str:
    common: dict[str, Any] = {
        "sending_application": settings.hl7.receiving_application,
        "sending_facility": settings.hl7.receiving_facility,
        "receiving_application": destination.receiving_application,
        "receiving_facility": destination.receiving_facility,
        "control_id": control,
        "timestamp": datetime.now(UTC),
    }
    if context.patient is None:
        raise OutboundMappingError("the report names no readable Patient", "subject")
    if message_type == "ADT_A08":
        return adt_a08(patient=context.patient, encounter=None, **common)
    return oru_r01(
        patient=context.patient,
        report=context.resource,
        observations=context.observations,
        service_request=context.service_request,
        **common,
    )


async def replay_outbound(
    session: AsyncSession, tenant_id: uuid.UUID | None, message_ids: Iterable[uuid.UUID]
) -> list[uuid.UUID]:
    """Send parked messages again (in their original order); the ids queued."""
    rows = list(
        await session.scalars(
            select(Hl7OutboundMessage).where(
                Hl7OutboundMessage.id.in_(list(message_ids)),
                Hl7OutboundMessage.status == "parked",
                Hl7OutboundMessage.body != "",
            )
        )
    )
    queued: list[uuid.UUID] = []
    for row in rows:
        if tenant_id is not None and row.tenant_id != tenant_id:
            continue
        row.status, row.attempts, row.next_attempt_at, row.last_error = "pending", 0, None, None
        destination = await session.get(Hl7Destination, row.destination_id)
        if destination is not None:
            await session.flush()
            await wake_delivery(session, destination)
        queued.append(row.id)
    return queued


HANDLERS: Final = (
    events.EventHandler("hl7v2.outbound", on_fhir_change, frozenset({"fhir.changed"})),
)
