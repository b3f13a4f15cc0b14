"""Fixtures for authentication against the real PostgreSQL and Redis (HAPI is not needed).

``auth_app``     an app (own instance, lifespan running) shared by this package's tests
``client``       an httpx client on ``auth_app`` from a client IP unique to the test, so the
                 per-IP login throttle of one test never affects another
``db``           a sessionmaker on the stack's app schema
``make_tenant``  ``await make_tenant()``: a Tenant row with a slug unique to this run
``make_user``    ``await make_user(tenant, roles=[...])``: a user (password :data:`PASSWORD`)
Every tenant made here is removed at the end with its users, keys and revocations.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from support.auth_live import PASSWORD, ClientFactory, MakeTenant, MakeUser, random_ip

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.core.db.models import ApiKey, RevokedToken, Tenant, User
from ehr.entrypoints.api import create_app
from ehr.platform.auth.service import create_user


@pytest.fixture(scope="session")
async def auth_app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        yield manager.app  # type: ignore[misc]


@pytest.fixture
def client_factory(auth_app: FastAPI) -> Callable[..., httpx.AsyncClient]:
    def make(ip: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=auth_app, client=(ip or random_ip(), 40000)),
            base_url="http://testserver",
        )

    return make


@pytest.fixture
async def client(client_factory: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with client_factory() as c:
        yield c


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.db)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
async def make_tenant(
    run_id: str, db: async_sessionmaker[AsyncSession]
) -> AsyncIterator[MakeTenant]:
    made: list[uuid.UUID] = []

    async def make(**overrides: Any) -> Tenant:
        values: dict[str, Any] = {
            "id": uuid.uuid4(),
            "slug": f"auth-{run_id[4:]}-{len(made)}",
            "partition_id": random.randint(1_500_000_000, 2_000_000_000),
            "name": "Auth test tenant",
            "status": "active",
        }
        values.update(overrides)
        tenant = Tenant(**values)
        async with db() as session, session.begin():
            session.add(tenant)
        made.append(tenant.id)
        return tenant

    yield make
    async with db() as session, session.begin():
        user_ids = list(
            (await session.scalars(select(User.id).where(User.tenant_id.in_(made)))).all()
        )
        if user_ids:
            await session.execute(delete(RevokedToken).where(RevokedToken.user_id.in_(user_ids)))
        await session.execute(delete(ApiKey).where(ApiKey.tenant_id.in_(made)))
        await session.execute(delete(User).where(User.tenant_id.in_(made)))
        await session.execute(delete(Tenant).where(Tenant.id.in_(made)))


@pytest.fixture(scope="session")
def make_user(db: async_sessionmaker[AsyncSession], settings: Settings) -> MakeUser:
    counter = iter(range(1_000_000))

    async def make(
        tenant: Tenant,
        *,
        roles: Sequence[str] = ("physician",),
        username: str | None = None,
        password: str = PASSWORD,
    ) -> User:
        async with db() as session, session.begin():
            return await create_user(
                session,
                tenant_id=tenant.id,
                username=username or f"user{next(counter)}",
                password=password,
                roles=roles,
                settings=settings,
            )

    return make
