"""Outbound HL7 v2: FHIR changes → ORU^R01 / ADT^A08 to a tenant's MLLP destinations (ADR 0033).

Driven by the domain events (ADR 0023/0027): every ``fhir.changed`` of a DiagnosticReport
(final, amended, corrected, appended) or of a Patient reaches :func:`on_fhir_change` in the
worker. It reads that version of the resource (and what an ORU needs: the Patient, the
Observations, the order) from HAPI, builds the message once per destination that takes the
event, and queues it in ``hl7_outbound_messages`` — in the event's transaction, one row per
(destination, resource version), so a redelivered event queues nothing twice. A result that
came in from a destination's own system (``meta.source``) is not sent back to it.

``hl7v2.deliver`` (one waiting job per destination, never two running) sends a destination's
queue in order over one MLLP connection: AA/CA → ``acked`` (the ACK is kept); AE/AR/CE/CR →
``parked`` with the reason (the receiver refused this message: sending it again would not
help; later messages go on); no connection, no ACK in time, an ACK for another message →
retried with backoff and **nothing after it is sent meanwhile** (order per destination), until
``EHR_HL7__OUTBOUND_MAX_ATTEMPTS``, then ``parked``. ``replay`` sends parked messages again.

Enhanced-mode application acknowledgements (MSH-16) of an inbound message go back the same way:
:func:`queue_application_ack` queues the ACK (``message_type`` ``ACK``) for the destination the
sender's registration names, in the transaction that decided it. An ACK is never acknowledged
itself (its MSH-15/16 say ``NE``): once written to the connection it is ``sent``; a reply that
names it anyway is read and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import Settings, get_settings
from ehr.core.db.models import Hl7Destination, Hl7Message, Hl7OutboundMessage, Hl7Sender, Tenant
from ehr.core.errors import NotFoundError
from ehr.fhir import FhirClient, TenantFhirClient
from ehr.fhir.datatypes import reference_parts
from ehr.modules.hl7v2 import metrics
from ehr.modules.hl7v2.acks import AckReply, read_ack
from ehr.modules.hl7v2.er7 import control_id as new_control_id
from ehr.modules.hl7v2.from_fhir import OutboundMappingError, adt_a08, oru_r01
from ehr.modules.hl7v2.mllp import FrameReader, frame_bytes
from ehr.modules.hl7v2.parsing import MessageRejected, parse_message
from ehr.modules.hl7v2.routing import event_allowed
from ehr.platform import events, jobs

__all__ = [
    "DELIVER",
    "HANDLERS",
    "OUTBOUND_EVENTS",
    "SOURCE_PREFIX",
    "DestinationNotFoundError",
    "OutboundNotFoundError",
    "deliver_pending",
    "on_fhir_change",
    "queue_application_ack",
    "queue_for",
    "replay_outbound",
    "source_of",
]

logger = structlog.get_logger(__name__)

OUTBOUND_EVENTS: Final = frozenset({"ORU_R01", "ADT_A08"})
# A destination taking this receives the application ACKs of senders that name it.
APPLICATION_ACK: Final = "ACK"
_REPORTED: Final = frozenset({"final", "amended", "corrected", "appended"})
# meta.source of what an inbound message wrote: urn:ehr:hl7v2:<MSH-3>:<MSH-4> (conversion.py).
SOURCE_PREFIX: Final = "urn:ehr:hl7v2:"
_ACK_READ_LIMIT: Final = 1024 * 1024


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
            await _wake(session, destination)
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
        await _wake(session, destination)
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


async def _wake(
    session: AsyncSession, destination: Hl7Destination, at: datetime | None = None
) -> None:
    """Make sure a delivery job for the destination is waiting (one is enough)."""
    try:
        async with session.begin_nested():
            await jobs.defer(
                session,
                DELIVER,
                tenant_id=destination.tenant_id,
                owner=f"hl7_destination:{destination.id}",
                args={"destination": str(destination.id)},
                schedule_at=at,
            )
    except jobs.JobAlreadyQueuedError:
        pass


# --- delivery --------------------------------------------------------------------------------


class _Connection:
    """One MLLP connection to a destination, opened when first needed."""

    def __init__(self, destination: Hl7Destination, settings: Settings) -> None:
        self.destination = destination
        self.settings = settings
        self._reader: FrameReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        # MSH-10 of the ACKs written on this connection: a reply naming one is not the answer.
        self.sent_acks: set[str] = set()

    async def send(self, body: str, control: str) -> None:
        """Write a message that gets no reply (an application ACK)."""
        writer = await self._open()
        writer.write(frame_bytes(body))
        await writer.drain()
        self.sent_acks.add(control)

    async def receive(self) -> str:
        """The next frame from the receiver."""
        frames = self._reader
        assert frames is not None  # noqa: S101 - set when the connection opened
        frame = await frames.next()
        if frame is None or frame.too_large or frame.truncated:
            await self.close()
            raise TimeoutError("no acknowledgement")
        return frame.payload.decode("utf-8", errors="replace")

    async def exchange(self, body: str) -> str:
        writer = await self._open()
        writer.write(frame_bytes(body))
        await writer.drain()
        return await self.receive()

    async def _open(self) -> asyncio.StreamWriter:
        if self._writer is not None:
            return self._writer
        hl7 = self.settings.hl7
        context: ssl.SSLContext | None = None
        if self.destination.tls:
            context = ssl.create_default_context(cafile=hl7.outbound_tls_ca_file)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.destination.host, self.destination.port, ssl=context),
            hl7.outbound_connect_timeout_seconds,
        )
        self._reader = FrameReader(
            reader, max_bytes=_ACK_READ_LIMIT, idle_timeout=hl7.outbound_ack_timeout_seconds
        )
        self._writer = writer
        return writer

    async def close(self) -> None:
        self.sent_acks.clear()
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()


@dataclass(frozen=True)
class DeliveryRun:
    """What one drain of a destination's queue did."""

    acked: int = 0
    parked: int = 0
    retry_at: datetime | None = None
    sent: int = 0


async def deliver_pending(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, destination_id: uuid.UUID
) -> DeliveryRun:
    """Send the destination's pending messages in order until the queue is empty or the head
    must wait for its retry (then a job is scheduled for that time)."""
    acked = parked = sent = 0
    async with sessions() as session:
        destination = await session.get(Hl7Destination, destination_id)
    if destination is None or destination.disabled_at is not None:
        return DeliveryRun()
    connection = _Connection(destination, settings)
    try:
        while True:
            async with sessions() as session:
                row = await session.scalar(
                    select(Hl7OutboundMessage)
                    .where(
                        Hl7OutboundMessage.destination_id == destination_id,
                        Hl7OutboundMessage.status == "pending",
                    )
                    .order_by(Hl7OutboundMessage.sequence)
                    .limit(1)
                )
                if row is None:
                    return DeliveryRun(acked, parked, sent=sent)
                now = datetime.now(UTC)
                if row.next_attempt_at is not None and row.next_attempt_at > now:
                    await _wake(session, destination, row.next_attempt_at)
                    await session.commit()
                    return DeliveryRun(acked, parked, row.next_attempt_at, sent)
                row_id, body, control = row.id, row.body, row.control_id
                is_ack = row.message_type == APPLICATION_ACK
            if is_ack:
                outcome, ack_text, reason = await _send_ack(connection, body, control)
            else:
                outcome, ack_text, reason = await _attempt(connection, body, control)
            async with sessions() as session, session.begin():
                row = await session.get(Hl7OutboundMessage, row_id, with_for_update=True)
                if row is None or row.status != "pending":
                    continue
                row.attempts += 1
                if outcome == "sent":
                    row.status, row.acked_at, row.last_error = "sent", datetime.now(UTC), None
                    sent += 1
                elif outcome == "acked":
                    row.status, row.acked_at = "acked", datetime.now(UTC)
                    row.ack, row.ack_code, row.last_error = ack_text, "AA", None
                    if ack_text:
                        with contextlib.suppress(MessageRejected):
                            row.ack_code = read_ack(ack_text).code[:2]
                    acked += 1
                elif outcome == "refused" or row.attempts >= settings.hl7.outbound_max_attempts:
                    row.status, row.ack, row.last_error = "parked", ack_text, reason[:500]
                    parked += 1
                    # The receiver's text may quote the message: kept on the row, never logged.
                    logger.warning("hl7v2.outbound.parked", message_id=str(row.id), outcome=outcome)
                else:
                    row.next_attempt_at = datetime.now(UTC) + _backoff(settings, row.attempts)
                    row.last_error = reason[:500]
                metrics.OUTBOUND.labels(row.message_type, outcome).inc()
    finally:
        await connection.close()


async def _send_ack(
    connection: _Connection, body: str, control: str
) -> tuple[str, str | None, str]:
    """``("sent", None, "")`` or ``("failed", None, reason)``."""
    try:
        await connection.send(body, control)
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        await connection.close()
        return "failed", None, f"{type(exc).__name__}: not sent"
    return "sent", None, ""


async def _attempt(connection: _Connection, body: str, control: str) -> tuple[str, str | None, str]:
    """``("acked", ack, "")``, ``("refused", ack, reason)`` or ``("failed", None, reason)``."""
    try:
        answer = await connection.exchange(body)
        reply = _read_reply(answer)
        # A receiver that answered one of our application ACKs anyway: not this message's answer.
        while reply is not None and reply.control_id in connection.sent_acks:
            connection.sent_acks.discard(reply.control_id)
            answer = await connection.receive()
            reply = _read_reply(answer)
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        await connection.close()
        return "failed", None, f"{type(exc).__name__}: no acknowledgement"
    if reply is None:
        await connection.close()
        return "failed", answer, "the answer is not an acknowledgement"
    if reply.control_id != control:
        await connection.close()
        return "failed", answer, "the acknowledgement names another message (MSA-2)"
    if reply.accepted:
        return "acked", answer, ""
    text = f": {reply.text[:200]}" if reply.text else ""
    return "refused", answer, f"refused {reply.code}{text}"


def _read_reply(answer: str) -> AckReply | None:
    try:
        return read_ack(answer)
    except MessageRejected:
        return None


def _backoff(settings: Settings, attempts: int) -> timedelta:
    hl7 = settings.hl7
    ceiling = min(hl7.outbound_retry_max_seconds, hl7.outbound_retry_base_seconds * 2**attempts)
    return timedelta(seconds=max(1.0, random.uniform(ceiling / 2, ceiling)))  # noqa: S311


async def _deliver_job(run: jobs.JobRun) -> Mapping[str, Any] | None:
    result = await deliver_pending(
        run.sessionmaker, get_settings(), uuid.UUID(str(run.args["destination"]))
    )
    return {"acked": result.acked, "sent": result.sent, "parked": result.parked}


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
            await _wake(session, destination)
        queued.append(row.id)
    return queued


DELIVER: Final = jobs.define(
    "hl7v2.deliver",
    _deliver_job,
    max_attempts=3,
    exclusive=lambda tenant, args: f"hl7v2-out:{args['destination']}",
    queueing_lock=lambda tenant, args: f"hl7v2-out:{args['destination']}",
    description="Send a destination's queued HL7 v2 messages in order",
)

HANDLERS: Final = (
    events.EventHandler("hl7v2.outbound", on_fhir_change, frozenset({"fhir.changed"})),
)
