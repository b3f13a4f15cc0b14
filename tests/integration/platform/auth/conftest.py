"""Fixtures for authentication against the real PostgreSQL and Redis (HAPI is not needed).

``auth_app``      an app (own instance, lifespan running) shared by this package's tests
``client``        an httpx client on ``auth_app`` from a client IP unique to the test, so the
                  per-IP login throttle of one test never affects another
``make_user``     ``await make_user(tenant, roles=[...])``: a user (password :data:`PASSWORD`)
``make_account``  ``await make_account(roles=[...])``: a fresh tenant with that user
``account``       ``tenant, user = account``: a fresh tenant with one physician
Tenants come from ``make_tenant`` (tests/integration/conftest.py): rows without a HAPI partition,
removed at the end with their users, keys and revocations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
from fastapi import FastAPI
from support.auth_live import (
    PASSWORD,
    Account,
    ClientFactory,
    MakeAccount,
    MakeUser,
    random_ip,
)
from support.database import Sessions
from support.in_process import client_of, started
from support.tenants import MakeTenant

from ehr.core.config import Settings
from ehr.core.db.models import Tenant, User
from ehr.entrypoints.api import create_app
from ehr.platform.auth.service import create_user


@pytest.fixture(scope="session")
async def auth_app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with started(create_app(settings)) as app:
        yield app


@pytest.fixture
def client_factory(auth_app: FastAPI) -> ClientFactory:
    def make(ip: str | None = None) -> httpx.AsyncClient:
        return client_of(auth_app, peer=(ip or random_ip(), 40000))

    return make


@pytest.fixture
async def client(client_factory: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with client_factory() as c:
        yield c


@pytest.fixture(scope="session")
def make_user(db: Sessions, settings: Settings) -> MakeUser:
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


@pytest.fixture(scope="session")
def make_account(make_tenant: MakeTenant, make_user: MakeUser) -> MakeAccount:
    async def make(*, roles: Sequence[str] = ("physician",)) -> Account:
        tenant = await make_tenant()
        return Account(tenant, await make_user(tenant, roles=roles))

    return make


@pytest.fixture
async def account(make_account: MakeAccount) -> Account:
    return await make_account()
