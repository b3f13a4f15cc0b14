"""Typed ``Annotated`` dependency aliases shared by every router.

The app lifespan (:func:`ehr.entrypoints.api.create_app`) opens one set of :class:`AppResources`
per process and hands it to requests through the lifespan state; these aliases are the only way
routers and services reach them::

    async def handler(session: SessionDep, redis: RedisDep) -> ...

``SettingsDep``   the app's :class:`~ehr.core.config.Settings`
``SessionDep``    an ``AsyncSession``; the request owns the transaction: commit after the handler
                  returns (before the response is sent), rollback if it raises
``RedisDep``      the pooled ``redis.asyncio.Redis`` client

The FHIR client is the FHIR layer's (:data:`ehr.fhir.FhirClientDep`); the tenant-bound one, the
only one business code gets, is tenancy's (:data:`ehr.platform.tenancy.TenantFhirDep`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ehr.core.config import Settings

__all__ = [
    "AppResources",
    "RedisDep",
    "ResourcesDep",
    "SessionDep",
    "SettingsDep",
    "get_app_settings",
    "get_redis",
    "get_resources",
    "get_session",
]


@dataclass(frozen=True, slots=True)
class AppResources:
    """Everything the lifespan opens once per process (and closes on shutdown)."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis


def get_resources(request: Request) -> AppResources:
    """The process-wide resources (raises if the app's lifespan is not running)."""
    resources = getattr(request.state, "resources", None)
    if not isinstance(resources, AppResources):
        raise RuntimeError("app resources missing: is the app's lifespan running?")
    return resources


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (available even without the lifespan)."""
    settings = getattr(request.app.state, "settings", None)
    if not isinstance(settings, Settings):
        raise RuntimeError(
            "app settings missing: build the app with ehr.entrypoints.api.create_app()"
        )
    return settings


# The dependencies are coroutines: FastAPI runs a plain ``def`` dependency in the threadpool, a
# thread hop per request for a dictionary lookup (docs/adr/0009, cost section).
async def _resources(request: Request) -> AppResources:
    return get_resources(request)


async def _settings(request: Request) -> Settings:
    return get_app_settings(request)


ResourcesDep = Annotated[AppResources, Depends(_resources)]
SettingsDep = Annotated[Settings, Depends(_settings)]


async def get_session(resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    """One session per request: commit when the handler succeeds, roll back when it raises."""
    async with resources.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


# scope="function": the commit happens before the response is sent, so a failed commit is
# reported to the caller instead of after a success status.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_redis(resources: ResourcesDep) -> Redis:
    return resources.redis


RedisDep = Annotated[Redis, Depends(get_redis)]
