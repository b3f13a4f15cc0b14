"""Delivering a destination's outbound HL7 v2 queue over MLLP (ADR 0033): ``hl7v2.deliver``.

One waiting job per destination, never two running: it sends the destination's ``pending``
rows in ``sequence`` order over one MLLP connection. AA/CA → ``acked`` (the ACK is kept);
AE/AR/CE/CR → ``parked`` with the reason (the receiver refused this message: sending it again
would not help; later messages go on); no connection, no ACK in time, an ACK for another
message → retried with backoff and **nothing after it is sent meanwhile** (order per
destination), until ``EHR_HL7__OUTBOUND_MAX_ATTEMPTS``, then ``parked``.

An application ACK (``message_type`` ``ACK``) is not itself acknowledged (MSH-15/16 ``NE``):
once written it is ``sent``; a reply that names it anyway is read past, never taken for the
next message's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import Settings, get_settings
from ehr.core.db.models import Hl7Destination, Hl7OutboundMessage
from ehr.modules.hl7v2 import metrics
from ehr.modules.hl7v2.acks import AckReply, read_ack
from ehr.modules.hl7v2.mllp import FrameReader, frame_bytes
from ehr.modules.hl7v2.parsing import MessageRejected
from ehr.platform import jobs

__all__ = ["APPLICATION_ACK", "DELIVER", "DeliveryRun", "deliver_pending", "wake_delivery"]

logger = structlog.get_logger(__name__)

# A destination taking this receives the application ACKs of senders that name it.
APPLICATION_ACK: Final = "ACK"
_ACK_READ_LIMIT: Final = 1024 * 1024


async def wake_delivery(
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
                    await wake_delivery(session, destination, row.next_attempt_at)
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


DELIVER: Final = jobs.define(
    "hl7v2.deliver",
    _deliver_job,
    max_attempts=3,
    exclusive=lambda tenant, args: f"hl7v2-out:{args['destination']}",
    queueing_lock=lambda tenant, args: f"hl7v2-out:{args['destination']}",
    description="Send a destination's queued HL7 v2 messages in order",
)
