"""Audit search (keyset pagination on ``seq``) and the record stream behind exports."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import Select, select
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
    session: AsyncSession, filters: AuditFilters, *, after_seq: int | None, limit: int
) -> tuple[list[AuditRecord], int | None]:
    """One page, newest first, and the ``seq`` to continue after (None on the last page)."""
    query = filtered_query(filters)
    if after_seq is not None:
        query = query.where(AuditRecord.seq < after_seq)
    rows = list(await session.scalars(query.order_by(AuditRecord.seq.desc()).limit(limit + 1)))
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, rows[-1].seq
    return rows, None


async def stream_records(
    sessionmaker: async_sessionmaker[AsyncSession], filters: AuditFilters, *, batch_size: int = 500
) -> AsyncIterator[AuditRecord]:
    """Every matching record, oldest first, from a server-side cursor in a session of its own."""
    async with sessionmaker() as session, session.begin():
        stream = await session.stream_scalars(
            filtered_query(filters)
            .order_by(AuditRecord.seq)
            .execution_options(yield_per=batch_size)
        )
        async for record in stream:
            yield record
            session.expunge(record)
