"""Receiving HL7 v2 messages: store before ACK (ADR 0033).

    reception = await receive(sessions, settings, raw, channel="mllp")
    if reception.ack is not None:            # None: MSH-15 asked for no accept acknowledgement
        send(reception.ack)

One path for MLLP and ``POST /api/hl7v2/messages``:

1. parse (``parsing``): a message that cannot be read is answered AR (enhanced mode: CR) with
   an ERR segment naming the code (HL7 table 0357) and where; nothing is stored — there is no
   sender to store it for;
2. route (``routing``): an unregistered sender, a disabled one, an event or processing id it
   may not send → AR/CR, not stored;
3. check the conversion without writing anything (``to_fhir``): what the mapping cannot take
   (an invalid birth date, no patient identifier) is an AE with the location — in enhanced mode
   the commit ACK is CA (it *is* stored) and the application ACK carries the AE;
4. insert the raw message with its ACK; a duplicate (same sender, same MSH-10: the unique index
   says so, also for two connections racing) → the stored ACK again, nothing reprocessed;
5. commit the message and (when it converts) the conversion job — or the application ACK to
   send back — in one PostgreSQL transaction, **then** answer. If that commit fails the sender
   gets AR/CR ("not stored, resend") — never an AA for a message we do not have.

Original mode: AA means "stored, will be converted"; conversion failures after that are dead
letters for the operator (``ehr hl7 dead-letters``), not a late AE.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import Settings
from ehr.core.db.models import Hl7Message, Hl7Sender
from ehr.modules.hl7v2 import metrics
from ehr.modules.hl7v2.acks import AckError, build_ack, build_ack_without_header
from ehr.modules.hl7v2.parsing import (
    APPLICATION_INTERNAL_ERROR,
    DATA_TYPE_ERROR,
    UNSUPPORTED_MESSAGE_TYPE,
    Header,
    Message,
    MessageRejected,
    decode,
    parse_message,
    split_batch,
)
from ehr.modules.hl7v2.routing import find_sender, sender_refusal
from ehr.modules.hl7v2.to_fhir import (
    SUPPORTED_EVENTS,
    ConversionContext,
    ConversionError,
    to_transaction,
)

__all__ = ["Answer", "Channel", "Reception", "receive", "receive_payload", "unreadable_ack"]

logger = structlog.get_logger(__name__)

Channel = Literal["mllp", "http"]

# ACK codes by mode: (success, error, reject).
_ORIGINAL: Final = ("AA", "AE", "AR")
_ENHANCED: Final = ("CA", "CE", "CR")


@dataclass(frozen=True, slots=True)
class Reception:
    """What became of one received message. ``ack``: the ER7 acknowledgement to send back
    (None when MSH-15 asks for none in this case); ``code``: its MSA-1; ``message_id``: the
    inbox row (None when nothing was stored); ``duplicate``: the stored ACK of an earlier copy."""

    ack: str | None
    code: str
    message_id: uuid.UUID | None = None
    duplicate: bool = False


def _codes(header: Header | None) -> tuple[str, str, str]:
    return _ENHANCED if header is not None and header.accept_ack_type else _ORIGINAL


def _wanted(header: Header | None, code: str) -> bool:
    """MSH-15 (accept acknowledgement type): AL always, NE never, ER only on an error, SU only
    on success; empty (original mode, or enhanced mode with only MSH-16) always."""
    condition = header.accept_ack_type if header is not None else ""
    if condition == "NE":
        return False
    if condition == "ER":
        return code[1] != "A"
    if condition == "SU":
        return code[1] == "A"
    return True


def _ack(
    settings: Settings,
    header: Header,
    code: str,
    refusal: MessageRejected | None,
    *,
    application: bool = False,
) -> str:
    errors: Sequence[AckError] = ()
    if refusal is not None:
        errors = (
            AckError(
                code=refusal.code,
                text=refusal.reason,
                location=refusal.location,
                severity="E",
            ),
        )
    return build_ack(
        header,
        code,
        control_id=_control_id(),
        text=refusal.reason if refusal is not None else None,
        errors=errors,
        receiving_app=settings.hl7.receiving_application,
        receiving_facility=settings.hl7.receiving_facility,
        application=application,
    )


def unreadable_ack(settings: Settings, text: str, refusal: MessageRejected) -> str:
    """The AR for input whose header could not be read (MSH-3/4/10 taken where they can be)."""
    return build_ack_without_header(
        text,
        "AR",
        refusal.reason,
        errors=(AckError(code=refusal.code, text=refusal.reason, location=refusal.location),),
        receiving_app=settings.hl7.receiving_application,
        receiving_facility=settings.hl7.receiving_facility,
    )


def _control_id() -> str:
    return uuid.uuid4().hex[:20]


def _count(channel: Channel, sender: str, event: str, code: str, *, duplicate: bool) -> None:
    metrics.MESSAGES.labels(channel, sender, event, code).inc()
    metrics.ACKS.labels(code, "true" if duplicate else "false").inc()


@dataclass(frozen=True, slots=True)
class Answer:
    """What one payload (a message, or a batch) gets back: ``ack`` the ER7 to send (a batch's
    ACKs inside BHS … BTS), or None when nothing is to be sent; one reception per message."""

    ack: str | None
    receptions: tuple[Reception, ...]


async def receive_payload(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    raw: bytes | str,
    *,
    channel: Channel,
    caller_tenant: uuid.UUID | None = None,
) -> Answer:
    """A message, or every message of a batch/file (FHS/BHS … BTS/FTS), received in order."""
    text = decode(raw) if isinstance(raw, bytes) else raw
    try:
        messages, batch_id = split_batch(text)
    except MessageRejected as refusal:
        ack = unreadable_ack(settings, text, refusal)
        return Answer(ack=ack, receptions=(Reception(ack=ack, code="AR"),))
    receptions = tuple(
        [
            await receive(sessions, settings, message, channel=channel, caller_tenant=caller_tenant)
            for message in messages
        ]
    )
    if not _is_batch(text):
        return Answer(ack=receptions[0].ack if receptions else None, receptions=receptions)
    return Answer(ack=_batch_ack(settings, receptions, batch_id), receptions=receptions)


def _is_batch(text: str) -> bool:
    return text.lstrip("\ufeff \r\n")[:3] in {"FHS", "BHS"}


def _batch_ack(settings: Settings, receptions: Sequence[Reception], batch_id: str | None) -> str:
    """The acknowledgements of a batch, as a batch (HL7 v2.5 2.10.3): BHS, the ACKs, BTS."""
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    bhs = "|".join(
        [
            "BHS",
            "^~\\&",
            settings.hl7.receiving_application,
            settings.hl7.receiving_facility,
            "",
            "",
            stamp,
            "",
            "",
            "",
            _control_id(),
            (batch_id or "")[:20],
        ]
    )
    acks = [reception.ack.rstrip("\r") for reception in receptions if reception.ack]
    return "\r".join([bhs, *acks, f"BTS|{len(acks)}"]) + "\r"


async def receive(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    raw: bytes | str,
    *,
    channel: Channel,
    caller_tenant: uuid.UUID | None = None,
) -> Reception:
    """Receive one message (see the module docstring); never raises for what the sender sent.
    ``caller_tenant``: over HTTP, the authenticated caller's tenant — a sender registered to
    another tenant is refused exactly like an unknown one."""
    started = time.perf_counter()
    try:
        return await _receive(sessions, settings, raw, channel=channel, caller_tenant=caller_tenant)
    finally:
        metrics.ACK_SECONDS.observe(time.perf_counter() - started)


async def _receive(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    raw: bytes | str,
    *,
    channel: Channel,
    caller_tenant: uuid.UUID | None,
) -> Reception:
    text = decode(raw) if isinstance(raw, bytes) else raw
    try:
        message = parse_message(text)
    except MessageRejected as unreadable:
        _count(channel, "unknown", "unparsed", "AR", duplicate=False)
        logger.info(
            "hl7v2.message.unreadable",
            channel=channel,
            code=unreadable.code,
            location=unreadable.location,
        )
        return Reception(ack=unreadable_ack(settings, text, unreadable), code="AR")
    header = message.header
    reject = _codes(header)[2]
    try:
        async with sessions() as session:
            sender = await find_sender(session, header)
            refusal = sender_refusal(sender, header)
            if (
                refusal is None
                and caller_tenant is not None
                and sender is not None
                and sender.tenant_id != caller_tenant
            ):
                refusal = sender_refusal(None, header)
            if refusal is not None or sender is None:
                assert refusal is not None  # noqa: S101 - sender None always has a refusal
                _count(channel, "unknown", header.event, reject, duplicate=False)
                logger.info(
                    "hl7v2.message.refused",
                    channel=channel,
                    message_type=header.event,
                    code=refusal.code,
                    location=refusal.location,
                )
                return _answer(settings, header, reject, refusal)
            return await _store(session, settings, sender, message, channel)
    except SQLAlchemyError as exc:
        logger.error(
            "hl7v2.message.not_stored",
            channel=channel,
            message_type=header.event,
            error=type(exc).__name__,
        )
        failure = MessageRejected(
            "The message could not be stored; resend it",
            code=APPLICATION_INTERNAL_ERROR,
        )
        _count(channel, "unknown", header.event, reject, duplicate=False)
        return _answer(settings, header, reject, failure)


def _answer(
    settings: Settings, header: Header, code: str, refusal: MessageRejected | None
) -> Reception:
    ack = _ack(settings, header, code, refusal)
    return Reception(ack=ack if _wanted(header, code) else None, code=code)


async def _stored(
    session: AsyncSession, sender_id: uuid.UUID, control_id: str
) -> Hl7Message | None:
    row: Hl7Message | None = await session.scalar(
        select(Hl7Message).where(
            Hl7Message.sender_id == sender_id, Hl7Message.control_id == control_id
        )
    )
    return row


def _duplicate(
    channel: Channel, sender: Hl7Sender, header: Header, stored: Hl7Message
) -> Reception:
    _count(channel, sender.name, header.event, stored.ack_code, duplicate=True)
    logger.info(
        "hl7v2.message.duplicate",
        channel=channel,
        message_type=header.event,
        message_id=str(stored.id),
    )
    return Reception(
        ack=stored.ack if _wanted(header, stored.ack_code) else None,
        code=stored.ack_code,
        message_id=stored.id,
        duplicate=True,
    )


def _check_conversion(
    message: Message, message_id: uuid.UUID, tenant: str
) -> tuple[MessageRejected | None, str | None]:
    """The conversion's verdict before anything is written: a refusal, and the patient's
    identifier (``system|value``) for the inbox's search."""
    if message.header.event not in SUPPORTED_EVENTS:
        return (
            MessageRejected(
                f"{message.header.event[:16]} messages are not converted",
                code=UNSUPPORTED_MESSAGE_TYPE,
                location="MSH-9",
            ),
            None,
        )
    context = ConversionContext(
        message_id=message_id.hex, received_at=datetime.now(UTC), tenant=tenant
    )
    try:
        conversion = to_transaction(message, context)
    except ConversionError as exc:
        return (
            MessageRejected(exc.reason, code=DATA_TYPE_ERROR, location=exc.location, reject=False),
            None,
        )
    return None, conversion.patient_identifier


async def _store(
    session: AsyncSession,
    settings: Settings,
    sender: Hl7Sender,
    message: Message,
    channel: Channel,
) -> Reception:
    # Imported here: the conversion job's module imports this package's public surface.
    from ehr.modules.hl7v2.conversion import defer_conversion
    from ehr.modules.hl7v2.outbound import queue_application_ack

    header = message.header
    success, error, reject = _codes(header)
    message_id = uuid.uuid4()
    refusal, patient_identifier = _check_conversion(message, message_id, str(sender.tenant_id))
    enhanced = bool(header.accept_ack_type)
    application_ack: str | None = None
    if refusal is None:
        code, status = success, "accepted"
    elif refusal.code == UNSUPPORTED_MESSAGE_TYPE:
        code, status = reject, "rejected"
    else:
        code, status = (success if enhanced else error), "rejected"
    ack = _ack(settings, header, code, None if code == success else refusal)
    if enhanced and refusal is not None and header.application_ack_type in {"AL", "ER"}:
        application_ack = _ack(
            settings, header, "AR" if refusal.reject else "AE", refusal, application=True
        )
    values = {
        "id": message_id,
        "tenant_id": sender.tenant_id,
        "sender_id": sender.id,
        "control_id": header.control_id,
        "message_type": header.event[:16],
        "version": header.version[:8],
        "channel": channel,
        "raw": message.text,
        "status": status,
        "ack_code": code,
        "ack": ack,
        "application_ack": application_ack,
        "error": _error_text(refusal),
        "patient_identifier": patient_identifier[:500] if patient_identifier else None,
    }
    # The unique (sender, MSH-10) index decides duplicates — also between two connections
    # racing with the same control id: the second waits for the first, then inserts nothing.
    inserted = await session.scalar(
        insert(Hl7Message)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["sender_id", "control_id"])
        .returning(Hl7Message.id)
    )
    if inserted is None:
        stored = await _stored(session, sender.id, header.control_id)
        if stored is None:  # pragma: no cover - the conflicting row was committed
            raise RuntimeError("a conflicting HL7 v2 message is not readable")
        return _duplicate(channel, sender, header, stored)
    row = Hl7Message(**values)  # not added: what the job and the ACK queue read
    if status == "accepted":
        await defer_conversion(session, row)
    elif application_ack is not None:
        await queue_application_ack(session, row)
    await session.commit()
    _count(channel, sender.name, header.event, code, duplicate=False)
    logger.info(
        "hl7v2.message.stored",
        channel=channel,
        message_type=header.event,
        message_id=str(message_id),
        ack=code,
        status=status,
    )
    return Reception(ack=ack if _wanted(header, code) else None, code=code, message_id=message_id)


def _error_text(refusal: MessageRejected | None) -> str | None:
    if refusal is None:
        return None
    where = f" at {refusal.location}" if refusal.location else ""
    return f"{refusal.code}{where}: {refusal.reason}"[:1000]
