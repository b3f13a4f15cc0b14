"""Audit search (keyset pagination on ``(occurred_at, id)``) and the record stream behind exports.

A tenant's records are in several chains (one per shard), so ``seq`` orders a chain, not the
tenant: search and export go by time, ties broken by chain position.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy import Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.db.models import AuditRecord
from ehr.platform.audit.schemas import AuditFilters

__all__ = ["filtered_query", "search_records", "stream_records"]


def filtered_query(filters: AuditFilters) -> Select[AuditRecord]:
    """Records of the filters' tenant matching every given filter."""
    query = select(AuditRecord).where(AuditRecord.tenant == filters.tenant)
    if filters.user is not None:
        query = query.where(AuditRecord.actor_id == filters.user)
    if filters.patient is not None:
        query = query.where(AuditRecord.patient_id == filters.patient)
    if filters.action is not None:
        query = query.where(AuditRecord.action == filters.action)
    if filters.since is not None:
        query = query.where(AuditRecord.occurred_at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditRecord.occurred_at < filters.until)
    return query


async def search_records(
    session: AsyncSession,
    filters: AuditFilters,
    *,
    after: tuple[datetime, int] | None,
    limit: int,
) -> tuple[list[AuditRecord], tuple[datetime, int] | None]:
    """One page, newest first, and the ``(occurred_at, id)`` to continue after (None on the
    last page)."""
    query = filtered_query(filters)
    if after is not None:
        query = query.where(tuple_(AuditRecord.occurred_at, AuditRecord.id) < tuple_(*after))
    rows = list(
        await session.scalars(
            query.order_by(AuditRecord.occurred_at.desc(), AuditRecord.id.desc()).limit(limit + 1)
        )
    )
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, (rows[-1].occurred_at, rows[-1].id)
    return rows, None


async def stream_records(
    sessionmaker: async_sessionmaker[AsyncSession], filters: AuditFilters, *, batch_size: int = 500
) -> AsyncIterator[AuditRecord]:
    """Every matching record, oldest first (then by shard and seq), from a server-side cursor
    in a session of its own."""
    async with sessionmaker() as session, session.begin():
        stream = await session.stream_scalars(
            filtered_query(filters)
            .order_by(AuditRecord.occurred_at, AuditRecord.shard, AuditRecord.seq)
            .execution_options(yield_per=batch_size)
        )
        async for record in stream:
            yield record
            session.expunge(record)
