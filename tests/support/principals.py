"""Callers injected into an app (``dependency_overrides`` of the authenticated principal).

For tests about what a route does with a caller, not about how the caller got in (real tokens,
roles and tenants are exercised by tests/integration/platform/auth and tenancy)::

    with acting_as(app, make_principal("DEFAULT", "physician")):
        await api.get("/api/patients")
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from fastapi import FastAPI

from ehr.platform.auth.dependencies import get_current_principal
from ehr.platform.auth.principal import Principal

__all__ = ["acting_as", "make_principal", "override_principal"]


def make_principal(
    tenant: str, *roles: str, kind: Literal["user", "api_key"] = "user", username: str | None = None
) -> Principal:
    """A principal of ``tenant`` with ``roles`` (fresh subject and tenant ids)."""
    return Principal(
        kind=kind,
        subject=uuid.uuid4(),
        tenant=tenant,
        tenant_id=uuid.uuid4(),
        roles=frozenset(roles),
        username=username,
    )


def override_principal(app: FastAPI, principal: Principal | None) -> None:
    """``principal`` is the caller of ``app``'s next requests (``None``: authentication again)."""
    if principal is None:
        app.dependency_overrides.pop(get_current_principal, None)
        return

    async def injected() -> Principal:
        return principal

    app.dependency_overrides[get_current_principal] = injected


@contextmanager
def acting_as(app: FastAPI, principal: Principal) -> Iterator[Principal]:
    """``principal`` is ``app``'s caller inside the block."""
    override_principal(app, principal)
    try:
        yield principal
    finally:
        override_principal(app, None)
