"""Reading the inbox and the registrations (API and CLI; ADR 0033).

    page = await list_messages(session, tenant_id, status="dead", limit=50)
    row = await get_message(session, tenant_id, message_id)        # 404 for another tenant's
    senders = await list_senders(session, tenant_id)
    sender = await set_ack_destination(session, tenant_id, sender_id, destination_id)

Pages are newest first, by ``(received_at, id)``; ``cursor`` is opaque (``next_cursor``).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import Hl7Message, Hl7Sender
from ehr.core.errors import BadRequestError, NotFoundError
from ehr.modules.hl7v2.destinations import ack_destination

__all__ = [
    "InvalidCursorError",
    "MessageNotFoundError",
    "MessagePage",
    "SenderNotFoundError",
    "disable_sender",
    "get_message",
    "get_sender",
    "list_messages",
    "list_senders",
    "set_ack_destination",
]


class MessageNotFoundError(NotFoundError):
    """Raised when no message of the caller's tenant has this id."""

    code = "hl7_message_not_found"
    title = "No such HL7 v2 message"


class SenderNotFoundError(NotFoundError):
    """Raised when no sender registration of the caller's tenant has this id."""

    code = "hl7_sender_not_found"
    title = "No such HL7 v2 sender"


class InvalidCursorError(BadRequestError):
    """Raised when ``cursor`` is not one this API gave out."""

    code = "invalid_cursor"
    title = "Invalid cursor"


@dataclass(frozen=True, slots=True)
class MessagePage:
    items: list[Hl7Message]
    next_cursor: str | None


def _encode_cursor(row: Hl7Message) -> str:
    raw = f"{row.received_at.isoformat()}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, identifier = raw.partition("|")
        when = datetime.fromisoformat(stamp)
        return (when if when.tzinfo else when.replace(tzinfo=UTC)), uuid.UUID(identifier)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursorError("This cursor was not given out by this API") from None


async def list_messages(
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    *,
    control_id: str | None = None,
    patient: str | None = None,
    status: str | None = None,
    sender_id: uuid.UUID | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> MessagePage:
    """The tenant's messages (every tenant's with ``tenant_id=None``: the operator's CLI),
    newest first. ``patient``: ``system|value`` exactly, or a bare identifier value."""
    query = select(Hl7Message)
    if tenant_id is not None:
        query = query.where(Hl7Message.tenant_id == tenant_id)
    if control_id:
        query = query.where(Hl7Message.control_id == control_id)
    if status:
        query = query.where(Hl7Message.status == status)
    if sender_id is not None:
        query = query.where(Hl7Message.sender_id == sender_id)
    if patient:
        if "|" in patient:
            query = query.where(Hl7Message.patient_identifier == patient)
        else:
            query = query.where(Hl7Message.patient_identifier.like(f"%|{_like(patient)}"))
    if cursor:
        when, identifier = _decode_cursor(cursor)
        query = query.where(
            or_(
                Hl7Message.received_at < when,
                and_(Hl7Message.received_at == when, Hl7Message.id < identifier),
            )
        )
    rows = list(
        await session.scalars(
            query.order_by(Hl7Message.received_at.desc(), Hl7Message.id.desc()).limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return MessagePage(items=rows, next_cursor=_encode_cursor(rows[-1]) if more and rows else None)


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def get_message(
    session: AsyncSession, tenant_id: uuid.UUID | None, message_id: uuid.UUID
) -> Hl7Message:
    row = await session.get(Hl7Message, message_id)
    if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
        raise MessageNotFoundError("No HL7 v2 message with this id")
    return row


async def list_senders(session: AsyncSession, tenant_id: uuid.UUID | None) -> list[Hl7Sender]:
    query = select(Hl7Sender).order_by(Hl7Sender.created_at, Hl7Sender.id)
    if tenant_id is not None:
        query = query.where(Hl7Sender.tenant_id == tenant_id)
    return list(await session.scalars(query))


async def disable_sender(
    session: AsyncSession, tenant_id: uuid.UUID | None, sender_id: uuid.UUID
) -> Hl7Sender:
    """Refuse the sender's messages from now on (AR); what it sent stays in the inbox."""
    sender = await get_sender(session, tenant_id, sender_id)
    if sender.disabled_at is None:
        sender.disabled_at = datetime.now(UTC)
        await session.flush()
    return sender


async def get_sender(
    session: AsyncSession, tenant_id: uuid.UUID | None, sender_id: uuid.UUID
) -> Hl7Sender:
    sender = await session.get(Hl7Sender, sender_id)
    if sender is None or (tenant_id is not None and sender.tenant_id != tenant_id):
        raise SenderNotFoundError("No HL7 v2 sender with this id")
    return sender


async def set_ack_destination(
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    sender_id: uuid.UUID,
    destination_id: uuid.UUID | None,
) -> Hl7Sender:
    """Send the sender's application ACKs to this destination from now on (``None``: keep them
    on the message only). The destination must be the sender's tenant's and take ``ACK``."""
    sender = await get_sender(session, tenant_id, sender_id)
    if destination_id is not None:
        await ack_destination(session, sender.tenant_id, destination_id)
    sender.ack_destination_id = destination_id
    await session.flush()
    return sender
