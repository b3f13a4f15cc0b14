"""The pool without pre-ping (ehr.core.db.engine): a connection PostgreSQL closed fails the one
statement that meets it — as a clean "database unavailable", never a 500 — and the pool is
usable again at once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine
from ehr.core.outages import DatabaseUnavailable, unavailable_error

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.db.model_copy(update={"pool_size": 2, "max_overflow": 0}))
    yield engine
    await engine.dispose()


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_connection_closed_by_the_server_fails_once_then_the_pool_recovers(
    engine: AsyncEngine, settings: Settings
) -> None:
    assert engine.pool._pre_ping is False  # the behaviour under test
    pooled = await _backend_pid(engine)
    # Another session ends the pooled connection (a restart, a failover, an idle timeout).
    killer = create_engine(settings.db)
    try:
        async with killer.connect() as connection:
            ended = await connection.execute(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": pooled}
            )
            assert ended.scalar_one() is True
    finally:
        await killer.dispose()
    with pytest.raises(DBAPIError) as caught:
        await _backend_pid(engine)
    assert caught.value.connection_invalidated
    # What a request gets for it: 503 database_unavailable (ADR 0013), not 500.
    assert isinstance(unavailable_error(caught.value), DatabaseUnavailable)
    # The next checkout connects afresh.
    assert await _backend_pid(engine) != pooled
