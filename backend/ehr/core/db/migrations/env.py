"""Alembic environment: async (asyncpg), everything in the app schema.

The schema is, in order of precedence: ``config.attributes["app_schema"]`` (set by
:mod:`ehr.core.db.migrate`), ``alembic -x schema=NAME``, ``settings.db.app_schema``. The database
URL:
``config.attributes["database_url"]``, else ``settings.db.url``. The schema is created if
missing and holds the ``alembic_version`` table too. A caller may pass an open connection in
``config.attributes["connection"]`` (programmatic use inside an event loop).
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from ehr.core.db.migrate import validate_schema_name
from ehr.core.db.models import MODEL_SCHEMA, Base

config = context.config
if config.config_file_name is not None:  # run by the `alembic` command with alembic.ini
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _settings_value(name: str) -> str:
    # Settings are read only when the caller gave no explicit value.
    from ehr.core.config import load_settings

    settings = load_settings()
    if name == "app_schema":
        return settings.db.app_schema
    return settings.db.url.get_secret_value()


def _app_schema() -> str:
    schema = config.attributes.get("app_schema") or context.get_x_argument(as_dictionary=True).get(
        "schema"
    )
    return validate_schema_name(schema or _settings_value("app_schema"))


def _database_url() -> str:
    url = config.attributes.get("database_url")
    return str(url) if url else _settings_value("url")


def do_run_migrations(connection: Connection) -> None:
    schema = _app_schema()

    def include_name(name: str | None, type_: str, _parents: object) -> bool:
        # Autogenerate looks at the app schema only (never public or other schemas).
        return type_ != "schema" or name in (MODEL_SCHEMA, schema)

    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table_schema=schema,
        include_schemas=True,
        include_name=include_name,
        compare_type=True,
    )
    with context.begin_transaction():
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(_database_url(), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
