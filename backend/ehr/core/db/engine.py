"""The async SQLAlchemy engine and session factory, built from ``settings.db``.

All models are declared in the schema ``ehr_app`` (:data:`ehr.core.db.models.MODEL_SCHEMA`); the
engine maps that name onto ``settings.db.app_schema`` with a ``schema_translate_map``, so a
deployment (or a test) can use another schema name without touching the models.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from ehr.core.config import DatabaseSettings
from ehr.core.db.models import MODEL_SCHEMA

__all__ = ["create_engine", "create_sessionmaker", "libpq_url"]


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    """A pooled asyncpg engine (no connection is made until first use)."""
    return create_async_engine(
        settings.url.get_secret_value(),
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        # No pre-ping: it cost a BEGIN/SELECT 1/ROLLBACK on every checkout, the largest share
        # of the hot path's round trips (docs/adr/0009, cost section). A connection PostgreSQL
        # closed is found by its first statement instead: SQLAlchemy sees the disconnect,
        # invalidates the whole pool, and the next checkout connects afresh (one request
        # fails, 503 via the error handler). Recycling bounds a connection's age below any
        # server or proxy idle timeout.
        pool_pre_ping=False,
        pool_recycle=settings.pool_recycle_seconds,
        echo=settings.echo,
        # Statement parameters stay out of logs and exception text (they may carry personal data).
        hide_parameters=True,
        connect_args={"server_settings": {"application_name": "ehr-api"}},
        execution_options={"schema_translate_map": {MODEL_SCHEMA: settings.app_schema}},
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for request-scoped units of work (the request commits; services only flush)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def libpq_url(settings: DatabaseSettings) -> str:
    """``settings.url`` (SQLAlchemy + asyncpg) as a libpq URL, for the drivers used without
    SQLAlchemy (asyncpg's LISTEN connection, psycopg for the job queue): no driver suffix, and
    asyncpg's ``ssl=`` query parameter under libpq's name ``sslmode=`` (a managed database
    with TLS required: ``?ssl=require``)."""
    url = make_url(settings.url.get_secret_value()).set(drivername="postgresql")
    query = dict(url.query)
    if "ssl" in query:
        query["sslmode"] = query.pop("ssl")
    return url.set(query=query).render_as_string(hide_password=False)
