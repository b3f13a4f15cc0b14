"""A tenant's outbound HL7 v2 destinations and their queues (API and CLI; ADR 0033).

destination = await register_destination(session, tenant_id=..., name="lis", host=...,
                                         port=2575, message_types=["ORU_R01"], ...)
rows = await list_outbound(session, tenant_id, status="parked")
destination = await ack_destination(session, tenant_id, destination_id)   # for a sender's ACKs
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import Hl7Destination, Hl7OutboundMessage
from ehr.core.errors import RequestValidationFailed
from ehr.modules.hl7v2.outbound import APPLICATION_ACK, DestinationNotFoundError

__all__ = [
    "AckDestinationInvalidError",
    "ack_destination",
    "disable_destination",
    "list_destinations",
    "list_outbound",
    "register_destination",
]


async def register_destination(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    host: str,
    port: int,
    message_types: Iterable[str],
    receiving_application: str,
    receiving_facility: str,
    created_by: str,
    tls: bool = False,
) -> Hl7Destination:
    """A new destination (flushed; a name taken in the tenant fails on its unique key)."""
    destination = Hl7Destination(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        name=name,
        host=host,
        port=port,
        tls=tls,
        message_types=sorted(set(message_types)),
        receiving_application=receiving_application,
        receiving_facility=receiving_facility,
        created_by=created_by,
    )
    session.add(destination)
    await session.flush()
    return destination


class AckDestinationInvalidError(RequestValidationFailed):
    """Raised when a sender's ACK destination is not an enabled destination of its tenant
    that takes ``ACK``."""

    code = "hl7_ack_destination_invalid"
    title = "Not a destination for application acknowledgements"


async def ack_destination(
    session: AsyncSession, tenant_id: uuid.UUID, destination_id: uuid.UUID
) -> Hl7Destination:
    """The destination a sender's application ACKs may go to: the tenant's, enabled, and
    registered with the ``ACK`` message type."""
    destination = await session.get(Hl7Destination, destination_id)
    if destination is None or destination.tenant_id != tenant_id:
        raise AckDestinationInvalidError(
            "No HL7 v2 destination of this tenant has this id",
            extra={"ack_destination_id": str(destination_id)},
        )
    if destination.disabled_at is not None or APPLICATION_ACK not in destination.message_types:
        raise AckDestinationInvalidError(
            f"The destination must be enabled and take {APPLICATION_ACK}",
            extra={"ack_destination_id": str(destination_id)},
        )
    return destination


async def list_destinations(
    session: AsyncSession, tenant_id: uuid.UUID | None
) -> list[Hl7Destination]:
    query = select(Hl7Destination).order_by(Hl7Destination.created_at, Hl7Destination.id)
    if tenant_id is not None:
        query = query.where(Hl7Destination.tenant_id == tenant_id)
    return list(await session.scalars(query))


async def disable_destination(
    session: AsyncSession, tenant_id: uuid.UUID | None, destination_id: uuid.UUID
) -> Hl7Destination:
    """Stop sending there (queued messages wait; enabling again is re-registering)."""
    destination = await session.get(Hl7Destination, destination_id)
    if destination is None or (tenant_id is not None and destination.tenant_id != tenant_id):
        raise DestinationNotFoundError("No HL7 v2 destination with this id")
    if destination.disabled_at is None:
        destination.disabled_at = datetime.now(UTC)
        await session.flush()
    return destination


async def list_outbound(
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    *,
    status: str | None = None,
    destination_id: uuid.UUID | None = None,
    limit: int = 50,
) -> list[Hl7OutboundMessage]:
    """Outbound messages, newest first."""
    query = select(Hl7OutboundMessage)
    if tenant_id is not None:
        query = query.where(Hl7OutboundMessage.tenant_id == tenant_id)
    if status:
        query = query.where(Hl7OutboundMessage.status == status)
    if destination_id is not None:
        query = query.where(Hl7OutboundMessage.destination_id == destination_id)
    return list(
        await session.scalars(query.order_by(Hl7OutboundMessage.sequence.desc()).limit(limit))
    )
