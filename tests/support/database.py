"""Sessions on the stack's PostgreSQL for test set-up, checks and clean-up.

async with open_sessions(settings) as sessions:
    async with sessions() as session, session.begin():
        ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine, create_sessionmaker

__all__ = ["Sessions", "open_sessions"]

Sessions = async_sessionmaker[AsyncSession]


@asynccontextmanager
async def open_sessions(settings: Settings) -> AsyncIterator[Sessions]:
    """A sessionmaker on ``settings.db`` (its own engine, disposed at the end of the block)."""
    engine = create_engine(settings.db)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()
