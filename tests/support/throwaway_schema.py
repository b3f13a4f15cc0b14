"""App schemas of one test module (migrated to head, dropped at the end) and their tenant rows.

``throwaway_schema(settings, prefix)``  ``async with``: settings whose app schema is a new one
                                       (``<prefix>_<random>``) migrated to head; at the end the
                                       schema, its job-queue schema and its event stream go
``tenant_rows(sessions, prefix, base)`` two active tenants ``a``, ``b`` without HAPI partitions
                                       (partition ids from ``base``; nothing reads FHIR)
``admin_of(tenant)``                   a principal with the admin role in that tenant
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import sqlalchemy as sa
from redis.asyncio import Redis

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine
from ehr.core.db.migrate import upgrade
from ehr.core.db.models import Tenant, job_queue_schema
from ehr.platform import events
from ehr.platform.auth import signing_keys
from ehr.platform.auth.principal import Principal
from support.database import Sessions
from support.settings import settings_with

__all__ = ["admin_of", "tenant_rows", "throwaway_schema"]


@contextlib.asynccontextmanager
async def throwaway_schema(settings: Settings, prefix: str) -> AsyncIterator[Settings]:
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    local = settings_with(settings, "db", app_schema=schema)
    await upgrade(local)
    # The process caches the signing key of the schema it last read for 30 s: a token issued
    # now must be signed with this schema's key, and one issued after must not use it.
    signing_keys.invalidate_cache()
    try:
        yield local
    finally:
        signing_keys.invalidate_cache()
        redis = Redis.from_url(settings.redis.url.get_secret_value())
        await redis.delete(events.stream_key(settings.events, schema))
        await redis.aclose()
        engine = create_engine(settings.db)
        async with engine.begin() as connection:
            for name in (job_queue_schema(schema), schema):
                await connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        await engine.dispose()


async def tenant_rows(sessions: Sessions, prefix: str, base: int) -> list[Tenant]:
    made = [
        Tenant(
            id=uuid.uuid4(),
            slug=f"{prefix}-{label}-{uuid.uuid4().hex[:6]}",
            partition_id=base + index,
            name=f"{prefix} test {label}",
            status="active",
        )
        for index, label in enumerate(("a", "b"))
    ]
    async with sessions() as session, session.begin():
        session.add_all(made)
    return made


def admin_of(tenant: Tenant) -> Principal:
    return Principal(
        kind="user",
        subject=uuid.uuid4(),
        tenant=tenant.slug,
        tenant_id=tenant.id,
        roles=frozenset({"admin"}),
    )
