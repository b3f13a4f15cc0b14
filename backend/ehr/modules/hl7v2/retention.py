"""How long HL7 v2 message bodies are kept (ADR 0033): the daily ``hl7v2.prune`` job.

Raw messages are PHI held for operations — duplicate detection, replay, the audited inbox —
not the record: what they said is in HAPI, with a MessageHeader and Provenance per message.
After ``EHR_HL7__RETENTION_DAYS`` the job deletes inbound messages that are done (``converted``,
``rejected``) and outbound ones that were delivered (``acked``, ``sent``). What still needs an
operator — ``accepted``/``failed`` (waiting), ``dead`` letters, ``pending``/``parked`` outbound —
is kept whatever its age. A resend of a pruned MSH-10 is a new message (converted again:
conversion is idempotent on the message's business identifiers, so nothing is duplicated).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import get_settings
from ehr.core.db.models import Hl7Message, Hl7OutboundMessage
from ehr.platform import jobs

__all__ = ["PRUNE", "prune_messages"]

logger = structlog.get_logger(__name__)

_INBOUND_DONE: Final = ("converted", "rejected")
_OUTBOUND_DONE: Final = ("acked", "sent")
# Deleted in chunks: one long transaction would hold the rows' locks against the listener.
_CHUNK: Final = 5000


async def prune_messages(
    sessions: async_sessionmaker[AsyncSession], retention_days: int
) -> dict[str, int]:
    """Delete done messages older than ``retention_days``; the counts deleted."""
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    inbound = await _delete(
        sessions,
        Hl7Message,
        sa.and_(Hl7Message.status.in_(_INBOUND_DONE), Hl7Message.received_at < cutoff),
    )
    outbound = await _delete(
        sessions,
        Hl7OutboundMessage,
        sa.and_(
            Hl7OutboundMessage.status.in_(_OUTBOUND_DONE), Hl7OutboundMessage.created_at < cutoff
        ),
    )
    logger.info("hl7v2.retention.pruned", inbound=inbound, outbound=outbound)
    return {"inbound_deleted": inbound, "outbound_deleted": outbound}


async def _delete(
    sessions: async_sessionmaker[AsyncSession],
    model: type[Hl7Message] | type[Hl7OutboundMessage],
    condition: sa.ColumnElement[bool],
) -> int:
    deleted = 0
    while True:
        async with sessions() as session, session.begin():
            chosen = sa.select(model.id).where(condition).limit(_CHUNK).scalar_subquery()
            result = await session.execute(sa.delete(model).where(model.id.in_(chosen)))
            count = int(getattr(result, "rowcount", 0) or 0)
        deleted += count
        if count < _CHUNK:
            return deleted


async def _prune_job(run: jobs.JobRun) -> Mapping[str, Any] | None:
    return await prune_messages(run.sessionmaker, get_settings().hl7.retention_days)


PRUNE: Final = jobs.define(
    "hl7v2.prune",
    _prune_job,
    cron="41 3 * * *",
    max_attempts=3,
    description="Delete delivered HL7 v2 messages older than EHR_HL7__RETENTION_DAYS (daily).",
)
