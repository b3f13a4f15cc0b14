"""The SMART client registry: register, list and disable clients of a tenant."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import SmartClient, Tenant
from ehr.core.errors import NotFoundError, RequestValidationFailed
from ehr.platform.auth.client_keys import jwk_problem

__all__ = [
    "BACKEND_SERVICE",
    "RegisteredSmartClient",
    "disable_client",
    "list_clients",
    "register_backend_service",
    "system_scope_problem",
]

BACKEND_SERVICE: Final = "backend_service"
_MAX_KEYS: Final = 10
_SYSTEM_ACTIONS: Final = frozenset("cruds")


@dataclass(frozen=True, slots=True)
class RegisteredSmartClient:
    client_id: str
    name: str
    tenant: str
    kind: str
    scopes: tuple[str, ...]
    key_ids: tuple[str, ...]
    disabled: bool


def system_scope_problem(scope: str) -> str | None:
    """Why ``scope`` cannot be a Backend Services scope (None: ``system/<Type|*>.<cruds>`` or a
    v1 ``system/<Type|*>.read|write``)."""
    context, _, rest = scope.partition("/")
    resource, _, actions = rest.partition(".")
    if context != "system" or not resource or not actions:
        return f"{scope!r} is not a system/ scope"
    if not (resource == "*" or (resource.isalpha() and resource[0].isupper())):
        return f"{scope!r} names no resource type"
    if actions in ("read", "write", "*"):
        return None
    if set(actions) - _SYSTEM_ACTIONS or "".join(sorted(actions, key="cruds".index)) != actions:
        return f"{scope!r}: actions are some of c, r, u, d, s in that order"
    return None


def _checked_jwks(jwks: object) -> dict[str, Any]:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise RequestValidationFailed("The JWKS needs a non-empty 'keys' list")
    keys = jwks["keys"]
    if len(keys) > _MAX_KEYS:
        raise RequestValidationFailed(f"At most {_MAX_KEYS} keys")
    for key in keys:
        problem = jwk_problem(key)
        if problem is not None:
            raise RequestValidationFailed(f"The JWKS is not usable: {problem}")
    kids = [key["kid"] for key in keys]
    if len(set(kids)) != len(kids):
        raise RequestValidationFailed("Two keys share a 'kid'")
    return {"keys": [dict(key) for key in keys]}


def _view(client: SmartClient, tenant: str) -> RegisteredSmartClient:
    return RegisteredSmartClient(
        client_id=client.client_id,
        name=client.name,
        tenant=tenant,
        kind=client.kind,
        scopes=tuple(client.scopes),
        key_ids=tuple(str(key["kid"]) for key in client.jwks.get("keys", [])),
        disabled=client.disabled_at is not None,
    )


async def _tenant(session: AsyncSession, slug: str) -> Tenant:
    tenant = await session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise NotFoundError(f"No tenant {slug!r}")
    return tenant


async def register_backend_service(
    session: AsyncSession,
    *,
    tenant: str,
    name: str,
    jwks: object,
    scopes: Iterable[str],
    created_by: str | None = None,
) -> RegisteredSmartClient:
    """Register a Backend Services client; its ``client_id`` is generated."""
    wanted = sorted(set(scopes))
    if not wanted:
        raise RequestValidationFailed("A client needs at least one system/ scope")
    for scope in wanted:
        problem = system_scope_problem(scope)
        if problem is not None:
            raise RequestValidationFailed(problem)
    if not name.strip() or len(name) > 200:
        raise RequestValidationFailed("A client needs a name of at most 200 characters")
    owner = await _tenant(session, tenant)
    client = SmartClient(
        tenant_id=owner.id,
        # Hex: never starts with "-" (a command-line argument) and needs no URL encoding.
        client_id=secrets.token_hex(20),
        name=name.strip(),
        kind=BACKEND_SERVICE,
        jwks=_checked_jwks(jwks),
        scopes=wanted,
        created_by=created_by,
    )
    session.add(client)
    await session.flush()
    return _view(client, owner.slug)


async def list_clients(session: AsyncSession, *, tenant: str) -> Sequence[RegisteredSmartClient]:
    owner = await _tenant(session, tenant)
    rows = await session.scalars(
        select(SmartClient).where(SmartClient.tenant_id == owner.id).order_by(SmartClient.name)
    )
    return [_view(client, owner.slug) for client in rows]


async def disable_client(session: AsyncSession, *, tenant: str, client_id: str) -> None:
    """Disable a client: its assertions and the tokens already issued to it stop working."""
    owner = await _tenant(session, tenant)
    client = await session.scalar(
        select(SmartClient).where(
            SmartClient.client_id == client_id, SmartClient.tenant_id == owner.id
        )
    )
    if client is None:
        raise NotFoundError(f"No client {client_id!r} in tenant {tenant!r}")
    if client.disabled_at is None:
        client.disabled_at = datetime.now(UTC)
