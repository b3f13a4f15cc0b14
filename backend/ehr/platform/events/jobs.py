"""The events' periodic job (run by ``ehr worker``, ADR 0024): data minimisation of the outbox.

``events.prune`` deletes, older than ``EHR_EVENTS__RETENTION_DAYS``: relayed outbox rows,
handler receipts, and dead letters already replayed. Unrelayed rows and dead letters waiting for
an operator are never deleted. Receipts are cut at the same age as outbox rows: a receipt is
written after its row was created, so a row still in the outbox keeps all its receipts and a
``replay-outbox`` never re-handles an event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import delete, func
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import get_settings
from ehr.core.db.models import EventDeadLetter, EventOutbox, EventReceipt
from ehr.platform.jobs import JobDefinition, JobRun, define

__all__ = ["EVENT_JOBS", "PRUNE_EVENTS", "prune_events"]


async def prune_events(sessions: async_sessionmaker[AsyncSession], *, days: int) -> dict[str, int]:
    """Delete what is older than ``days`` (see the module); the counts deleted."""
    cutoff = func.now() - func.make_interval(0, 0, 0, days)
    async with sessions() as session, session.begin():
        outbox = await session.execute(
            delete(EventOutbox).where(
                EventOutbox.relayed_at.is_not(None), EventOutbox.created_at < cutoff
            )
        )
        receipts = await session.execute(
            delete(EventReceipt).where(EventReceipt.handled_at < cutoff)
        )
        dead = await session.execute(
            delete(EventDeadLetter).where(
                EventDeadLetter.replayed_at.is_not(None), EventDeadLetter.created_at < cutoff
            )
        )
    return {
        "outbox_deleted": int(getattr(outbox, "rowcount", 0) or 0),
        "receipts_deleted": int(getattr(receipts, "rowcount", 0) or 0),
        "dead_letters_deleted": int(getattr(dead, "rowcount", 0) or 0),
    }


async def _prune(run: JobRun) -> Mapping[str, Any]:
    return await prune_events(run.sessionmaker, days=get_settings().events.retention_days)


PRUNE_EVENTS: Final = define(
    "events.prune",
    _prune,
    cron="37 3 * * *",
    max_attempts=3,
    description="Delete relayed events, receipts and replayed dead letters older than "
    "EHR_EVENTS__RETENTION_DAYS (daily, 03:37).",
)

# For the worker's WORKER_JOBS.
EVENT_JOBS: Final[tuple[JobDefinition, ...]] = (PRUNE_EVENTS,)
