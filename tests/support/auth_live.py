"""Accounts and logins for the live authentication tests (``from support.auth_live import ...``).

The auth conftest makes them: ``account`` (a fresh tenant with one physician), ``make_account``,
``make_user`` (tenants: the integration conftest's ``make_tenant``). A test logs in with
:func:`login` (the response, to check) or :func:`access_token` (login as set-up: only the token).
API keys for set-up: :func:`issue_api_key`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

import httpx

from ehr.core.db.models import ApiKey, Tenant, User
from ehr.platform.auth.api_keys import create_api_key
from support.database import Sessions

__all__ = [
    "PASSWORD",
    "Account",
    "ClientFactory",
    "MakeAccount",
    "MakeUser",
    "access_token",
    "bearer",
    "issue_api_key",
    "login",
    "random_ip",
]

PASSWORD = "Tall-Quiet-Harbour-Lamps-42"

MakeUser = Callable[..., Awaitable[User]]
ClientFactory = Callable[..., httpx.AsyncClient]


class Account(NamedTuple):
    """A user and its tenant (``tenant, user = account``); the password is :data:`PASSWORD`."""

    tenant: Tenant
    user: User


MakeAccount = Callable[..., Awaitable[Account]]


def random_ip() -> str:
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


async def login(
    client: httpx.AsyncClient, tenant: Tenant, user: User, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        "/api/auth/login",
        json={"tenant": tenant.slug, "username": user.username, "password": password},
    )


async def access_token(client: httpx.AsyncClient, tenant: Tenant, user: User) -> str:
    """The access token of a password login (set-up: the login itself is not under test)."""
    return str((await login(client, tenant, user)).json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def issue_api_key(
    sessions: Sessions, tenant_id: uuid.UUID, name: str, ttl_days: int = 1, **grants: Sequence[str]
) -> tuple[ApiKey, str]:
    """An API key of the tenant made in its own transaction: the row and the plaintext key.

    ``grants``: ``roles``, ``permissions`` and ``scopes``, as :func:`create_api_key` takes them.
    """
    async with sessions() as session, session.begin():
        return await create_api_key(
            session, tenant_id=tenant_id, name=name, ttl_days=ttl_days, created_by="test", **grants
        )
