"""Operator actions: dead letters (list, replay) and rebuilding the stream from the outbox.

A replayed dead letter is XADDed again with ``only=<handler>``: only that handler's group
handles it, the other groups acknowledge it unread. Replaying the outbox (after Redis lost the
stream, or to feed a new handler) XADDs every row created since a time for all groups; handlers
that already took an event find their receipt and do nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.db.models import EventDeadLetter, EventOutbox
from ehr.platform.events.metrics import EVENTS_RELAYED
from ehr.platform.events.outbox import xadd_events
from ehr.platform.events.settings import EventsSettings

__all__ = [
    "DeadLetterView",
    "list_dead_letters",
    "outbox_status",
    "replay_dead_letters",
    "replay_outbox",
]

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DeadLetterView:
    """A dead letter as operators see it (ids and codes; the error has no PHI)."""

    id: int
    event_id: uuid.UUID
    handler: str
    tenant: str
    type: str
    error: str
    attempts: int
    created_at: datetime
    replayed_at: datetime | None


def _view(row: EventDeadLetter) -> DeadLetterView:
    return DeadLetterView(
        id=row.id,
        event_id=row.event_id,
        handler=row.handler,
        tenant=row.tenant,
        type=row.type,
        error=row.error,
        attempts=row.attempts,
        created_at=row.created_at,
        replayed_at=row.replayed_at,
    )


async def list_dead_letters(
    sessions: async_sessionmaker[AsyncSession],
    *,
    handler: str | None = None,
    include_replayed: bool = False,
    limit: int = 100,
) -> list[DeadLetterView]:
    """Dead letters, newest first (not yet replayed unless ``include_replayed``)."""
    query = select(EventDeadLetter).order_by(EventDeadLetter.id.desc()).limit(limit)
    if handler is not None:
        query = query.where(EventDeadLetter.handler == handler)
    if not include_replayed:
        query = query.where(EventDeadLetter.replayed_at.is_(None))
    async with sessions() as session:
        return [_view(row) for row in (await session.scalars(query)).all()]


async def replay_dead_letters(
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    *,
    key: str,
    events: EventsSettings,
    ids: Sequence[int] | None,
) -> list[int]:
    """Send dead letters back to their handler (``ids``; ``None`` = every one not replayed).
    Returns the ids replayed. The row is stamped ``replayed_at`` after the XADD succeeded."""
    replayed: list[int] = []
    async with sessions() as session, session.begin():
        query = (
            select(EventDeadLetter)
            .where(EventDeadLetter.replayed_at.is_(None))
            .order_by(EventDeadLetter.id)
            .with_for_update(skip_locked=True)
        )
        if ids is not None:
            query = query.where(EventDeadLetter.id.in_(list(ids)))
        rows = (await session.scalars(query)).all()
        for row in rows:
            if row.payload.get("unreadable"):
                continue  # nothing to send: the entry could not be read
            await xadd_events(
                redis, key, [row.payload], maxlen=events.stream_maxlen, only_handler=row.handler
            )
            replayed.append(row.id)
        if replayed:
            await session.execute(
                update(EventDeadLetter)
                .where(EventDeadLetter.id.in_(replayed))
                .values(replayed_at=datetime.now().astimezone())
            )
    logger.info("events.dead_letters.replayed", count=len(replayed))
    return replayed


async def replay_outbox(
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    *,
    key: str,
    events: EventsSettings,
    since: datetime,
    tenant: str | None = None,
    batch: int = 500,
) -> int:
    """XADD again every outbox row created at or after ``since`` (relayed or not), in id order.
    Returns how many entries were written."""
    written = 0
    after = 0
    while True:
        query = (
            select(EventOutbox.id, EventOutbox.payload)
            .where(EventOutbox.created_at >= since, EventOutbox.id > after)
            .order_by(EventOutbox.id)
            .limit(batch)
        )
        if tenant is not None:
            query = query.where(EventOutbox.tenant == tenant)
        async with sessions() as session:
            rows = (await session.execute(query)).all()
        if not rows:
            break
        await xadd_events(redis, key, (row.payload for row in rows), maxlen=events.stream_maxlen)
        written += len(rows)
        after = rows[-1].id
    EVENTS_RELAYED.inc(written)
    logger.info("events.outbox.replayed", count=written, tenant=tenant)
    return written


async def outbox_status(
    sessions: async_sessionmaker[AsyncSession], redis: Redis | None, *, key: str
) -> dict[str, object]:
    """Outbox depth and lag, dead letters waiting, and (when Redis answers) the stream's
    length and each consumer group's pending count and lag."""
    async with sessions() as session:
        depth, lag = (
            await session.execute(
                select(
                    func.count(),
                    func.coalesce(
                        func.extract("epoch", func.now() - func.min(EventOutbox.created_at)), 0
                    ),
                ).where(EventOutbox.relayed_at.is_(None))
            )
        ).one()
        dead = await session.scalar(
            select(func.count()).where(EventDeadLetter.replayed_at.is_(None))
        )
    status: dict[str, object] = {
        "outbox_depth": int(depth),
        "relay_lag_seconds": round(float(lag), 3),
        "dead_letters": int(dead or 0),
        "stream": key,
    }
    if redis is not None:
        try:
            status["stream_length"] = int(await redis.xlen(key))
            groups: Any = await redis.xinfo_groups(key) if status["stream_length"] else []
            status["groups"] = {
                _text(group["name"]): {
                    "pending": int(group["pending"]),
                    "lag": group.get("lag"),
                    "consumers": int(group["consumers"]),
                }
                for group in groups
            }
        except (RedisError, OSError) as exc:
            status["stream_error"] = type(exc).__name__
    return status


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
