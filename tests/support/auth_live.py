"""Helpers for the live authentication tests (imported by name: tests are not a package)."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import httpx

from ehr.core.db.models import Tenant, User

PASSWORD = "Tall-Quiet-Harbour-Lamps-42"

MakeTenant = Callable[..., Awaitable[Tenant]]
MakeUser = Callable[..., Awaitable[User]]
ClientFactory = Callable[..., httpx.AsyncClient]


def random_ip() -> str:
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


async def login(
    client: httpx.AsyncClient, tenant: Tenant, user: User, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        "/api/auth/login",
        json={"tenant": tenant.slug, "username": user.username, "password": password},
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
