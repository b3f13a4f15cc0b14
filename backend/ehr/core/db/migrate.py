"""Run the app-schema migrations from Python (the CLI, the devstack and tests use this).

``await upgrade(settings)`` / ``migrate(settings)`` bring ``settings.db.app_schema`` (or the
``schema`` given) to ``head``; the schema is created if missing. No ``alembic.ini`` is needed: the
script location is this package's ``migrations`` directory. (The top-level ``alembic.ini`` is for
running ``alembic`` by hand: ``alembic -x schema=NAME upgrade head``.)
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from ehr.core.config import Settings

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "downgrade",
    "migrate",
    "upgrade",
    "validate_schema_name",
]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
_SCHEMA_NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def validate_schema_name(name: str) -> str:
    """Return ``name`` if it is a plain lower-case PostgreSQL identifier, else raise ValueError.

    The name is interpolated into DDL (``CREATE SCHEMA``), so nothing else is accepted.
    """
    if not _SCHEMA_NAME.fullmatch(name) or name.startswith("pg_") or name == "public":
        raise ValueError(f"invalid app schema name {name!r}: use [a-z_][a-z0-9_]*, not public")
    return name


def alembic_config(*, schema: str, database_url: str | None = None) -> Config:
    """An Alembic config for our migrations targeting ``schema``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["app_schema"] = validate_schema_name(schema)
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


async def _run(settings: Settings, schema: str | None, action: str, revision: str) -> None:
    config = alembic_config(schema=schema or settings.db.app_schema)
    engine = create_async_engine(settings.db.url.get_secret_value(), poolclass=NullPool)

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        if action == "upgrade":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)

    try:
        async with engine.connect() as connection:
            await connection.run_sync(run)
            await connection.commit()
    finally:
        await engine.dispose()


async def upgrade(settings: Settings, *, schema: str | None = None, revision: str = "head") -> None:
    """Upgrade the app schema (``schema`` overrides ``settings.db.app_schema``) to ``revision``."""
    await _run(settings, schema, "upgrade", revision)


async def downgrade(settings: Settings, *, schema: str | None = None, revision: str) -> None:
    """Downgrade the app schema to ``revision`` (``"base"`` removes every table)."""
    await _run(settings, schema, "downgrade", revision)


def migrate(settings: Settings, *, schema: str | None = None, revision: str = "head") -> None:
    """Synchronous :func:`upgrade` for callers without an event loop (CLI, devstack)."""
    asyncio.run(upgrade(settings, schema=schema, revision=revision))
