"""Typed ``Annotated`` dependency aliases shared by every router.

The app lifespan (:func:`ehr.main.create_app`) opens one set of :class:`AppResources` per process
and hands it to requests through the lifespan state; these aliases are the only way routers and
services reach them::

    async def handler(fhir: TenantFhirDep, session: SessionDep) -> ...

``SettingsDep``   the app's :class:`~ehr.config.Settings`
``FhirClientDep`` the pooled :class:`~ehr.fhir.FhirClient` (not tenant-bound: operator paths and
                  health only; business routes use ``TenantFhirDep``)
``TenantDep``     the authenticated principal's tenant slug (= HAPI partition); never chosen by
                  the caller or by business code (a request without valid credentials is 401)
``TenantFhirDep`` the FHIR client bound to that tenant: the only FHIR client business code gets
``SessionDep``    an ``AsyncSession``; the request owns the transaction: commit after the handler
                  returns (before the response is sent), rollback if it raises
``RedisDep``      the pooled ``redis.asyncio.Redis`` client
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, TypedDict

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ehr.config import Settings
from ehr.fhir import FhirClient, TenantFhirClient

__all__ = [
    "AppResources",
    "FhirClientDep",
    "LifespanState",
    "RedisDep",
    "ResourcesDep",
    "SessionDep",
    "SettingsDep",
    "TenantDep",
    "TenantFhirDep",
    "get_app_settings",
    "get_fhir_client",
    "get_redis",
    "get_resources",
    "get_session",
    "get_tenant",
    "get_tenant_fhir",
]


@dataclass(frozen=True, slots=True)
class AppResources:
    """Everything the lifespan opens once per process (and closes on shutdown)."""

    settings: Settings
    fhir: FhirClient
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis


class LifespanState(TypedDict):
    """The lifespan state: copied into every request's ``request.state``."""

    resources: AppResources


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
        raise RuntimeError("app settings missing: build the app with ehr.main.create_app()")
    return settings


ResourcesDep = Annotated[AppResources, Depends(get_resources)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_fhir_client(resources: ResourcesDep) -> FhirClient:
    return resources.fhir


FhirClientDep = Annotated[FhirClient, Depends(get_fhir_client)]


def get_tenant(principal: _auth.CurrentPrincipal) -> str:
    """The tenant (HAPI partition) of the request: the authenticated principal's, always.

    It comes from the verified credential (access token or API key) whose tenant the
    authentication dependency has checked to be active; there is no header, parameter or setting
    by which a caller or business code could pick another one.
    """
    return principal.tenant


TenantDep = Annotated[str, Depends(get_tenant)]


def get_tenant_fhir(fhir: FhirClientDep, tenant: TenantDep) -> TenantFhirClient:
    return fhir.for_tenant(tenant)


TenantFhirDep = Annotated[TenantFhirClient, Depends(get_tenant_fhir)]


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


def get_redis(resources: ResourcesDep) -> Redis:
    return resources.redis


RedisDep = Annotated[Redis, Depends(get_redis)]


# At the bottom, as a module import: the authentication dependency itself uses the aliases above
# (sessions, Redis, settings), so importing it first would be circular. ``get_tenant``'s annotation
# is resolved by FastAPI when routes are declared, after both modules are complete.
import ehr.auth.dependencies as _auth  # noqa: E402
