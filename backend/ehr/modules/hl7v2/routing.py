"""Which tenant a message belongs to: the registered senders (ADR 0033).

A registration names MSH-3 and MSH-4 exactly, and optionally MSH-5/MSH-6 (``''`` = any);
the most specific registration that matches wins. Only what is registered is accepted: an
unknown sender, a disabled one, an event it may not send or a processing id it may not use is
refused (AR) before anything is stored.

    sender = await find_sender(session, message.header)      # Hl7Sender | None
    refusal = sender_refusal(sender, message.header)         # MessageRejected | None
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Final

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import Hl7Sender
from ehr.modules.hl7v2.parsing import (
    UNSUPPORTED_EVENT_CODE,
    UNSUPPORTED_MESSAGE_TYPE,
    UNSUPPORTED_PROCESSING_ID,
    Header,
    MessageRejected,
)

__all__ = [
    "PROCESSING_IDS",
    "TABLE_VALUE_NOT_FOUND",
    "event_allowed",
    "find_sender",
    "register_sender",
    "sender_refusal",
    "valid_event_pattern",
]

TABLE_VALUE_NOT_FOUND: Final = "103"
PROCESSING_IDS: Final = frozenset({"P", "T", "D"})
_EVENT_PATTERN: Final = re.compile(r"^(\*|[A-Z0-9]{3}_(\*|[A-Z0-9]{3}))$")


def valid_event_pattern(pattern: str) -> bool:
    """``ADT_A01``, ``ORU_*`` or ``*``."""
    return bool(_EVENT_PATTERN.match(pattern))


def event_allowed(patterns: Iterable[str], event: str) -> bool:
    """Whether ``event`` (``ADT_A01``) is one of the registration's ``patterns``."""
    message_type = event.split("_", 1)[0]
    return any(pattern in {"*", event, f"{message_type}_*"} for pattern in patterns)


async def find_sender(session: AsyncSession, header: Header) -> Hl7Sender | None:
    """The registration of the message's sender (the most specific match), enabled or not."""
    rows = await session.scalars(
        select(Hl7Sender).where(
            Hl7Sender.sending_application == header.sending_application,
            Hl7Sender.sending_facility == header.sending_facility,
            or_(
                Hl7Sender.receiving_application == "",
                Hl7Sender.receiving_application == header.receiving_application,
            ),
            or_(
                Hl7Sender.receiving_facility == "",
                Hl7Sender.receiving_facility == header.receiving_facility,
            ),
        )
    )
    matches = list(rows)
    if not matches:
        return None
    return max(
        matches, key=lambda row: (row.receiving_application != "", row.receiving_facility != "")
    )


def sender_refusal(sender: Hl7Sender | None, header: Header) -> MessageRejected | None:
    """Why the registration does not let this message in, or None."""
    if sender is None or sender.disabled_at is not None:
        return MessageRejected(
            "The sending application and facility (MSH-3, MSH-4) are not registered",
            code=TABLE_VALUE_NOT_FOUND,
            location="MSH-3",
        )
    if header.processing_id not in set(sender.processing_ids):
        return MessageRejected(
            f"Processing id {header.processing_id[:3]!r} (MSH-11) is not accepted from this sender",
            code=UNSUPPORTED_PROCESSING_ID,
            location="MSH-11",
        )
    if not event_allowed(sender.message_types, header.event):
        type_known = event_allowed(sender.message_types, f"{header.message_type}_*") or any(
            pattern.startswith(f"{header.message_type}_") for pattern in sender.message_types
        )
        return MessageRejected(
            f"This sender may not send {header.event[:16]} messages",
            code=UNSUPPORTED_EVENT_CODE if type_known else UNSUPPORTED_MESSAGE_TYPE,
            location="MSH-9",
        )
    return None


async def register_sender(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    sending_application: str,
    sending_facility: str,
    message_types: Iterable[str],
    created_by: str,
    receiving_application: str = "",
    receiving_facility: str = "",
    processing_ids: Iterable[str] = ("P",),
    ack_destination_id: uuid.UUID | None = None,
) -> Hl7Sender:
    """A new registration (flushed; the caller commits). Patterns and processing ids are
    checked by the caller's schema, the ACK destination by ``destinations.ack_destination``;
    a duplicate route fails on the unique index."""
    sender = Hl7Sender(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        name=name,
        sending_application=sending_application,
        sending_facility=sending_facility,
        receiving_application=receiving_application,
        receiving_facility=receiving_facility,
        message_types=sorted(set(message_types)),
        processing_ids=sorted(set(processing_ids)),
        ack_destination_id=ack_destination_id,
        created_by=created_by,
    )
    session.add(sender)
    await session.flush()
    return sender
