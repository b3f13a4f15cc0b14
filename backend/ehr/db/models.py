"""ALL tables of our own PostgreSQL schema, in one place.

No clinical data lives here (HAPI holds every clinical fact); only operational and identity
state. Models are declared in schema :data:`MODEL_SCHEMA` (``ehr_app``); the engine's
``schema_translate_map`` points that at ``settings.db.app_schema`` at run time.

Conventions: SQLAlchemy 2 typed declarative mapping; constraint names from
:data:`NAMING_CONVENTION` (so Alembic migrations are deterministic); relationships must be
declared with ``lazy="raise"`` (load explicitly with ``selectinload``; no implicit I/O in async
code); timestamps are ``timestamptz``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    DateTime,
    Identity,
    Index,
    MetaData,
    SmallInteger,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["MODEL_SCHEMA", "NAMING_CONVENTION", "Base", "IdempotencyKey"]

# The schema name models are declared in; mapped to settings.db.app_schema by the engine.
MODEL_SCHEMA: Final = "ehr_app"

NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every app table."""

    metadata = MetaData(schema=MODEL_SCHEMA, naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute as-is
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSONB,
    }


class IdempotencyKey(Base):
    """A business POST's ``Idempotency-Key`` and the answer given to it.

    The first request with a (tenant, key) inserts a row with no response yet; on completion the
    status and body are stored, and a retry with the same key and the same request fingerprint
    receives the stored answer (a different fingerprint is a conflict). Rows expire.
    The response body must be the API's own summary document, never a full clinical resource.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        # Unique (tenant, key): the constraint is the lock between concurrent retries.
        UniqueConstraint("tenant", "key"),
        # Expired rows are purged by expires_at.
        Index(None, "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    # Hex SHA-256 of method, route and canonical body: detects a reused key on another request.
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    # NULL while the first request is still in flight.
    response_status: Mapped[int | None] = mapped_column(SmallInteger)
    response_body: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]
