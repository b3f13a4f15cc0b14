"""The SMART client registry: register, list and disable clients of a tenant.

Kinds: ``backend_service`` (``system/`` scopes, ``private_key_jwt``), ``public_app`` (no secret,
PKCE only) and ``confidential_app`` (``private_key_jwt`` with a registered JWKS, or a shared
secret stored as its SHA-256 and shown once). Apps have exact redirect URIs (https, or http on a
loopback host for native apps, RFC 8252), the launch types they use (``ehr``, ``standalone``)
and the scopes they may ask for (``patient/`` and ``user/`` resource scopes and the SMART
context scopes); what a user grants is narrowed further at consent."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import SmartClient, Tenant
from ehr.core.errors import NotFoundError, RequestValidationFailed
from ehr.platform.auth.client_keys import jwk_problem

__all__ = [
    "APP_KINDS",
    "BACKEND_SERVICE",
    "CONFIDENTIAL_APP",
    "CONTEXT_SCOPES",
    "LAUNCH_TYPES",
    "PUBLIC_APP",
    "RegisteredSmartClient",
    "app_scope_problem",
    "disable_client",
    "find_client",
    "list_clients",
    "register_app",
    "register_backend_service",
    "secret_matches",
    "system_scope_problem",
]

BACKEND_SERVICE: Final = "backend_service"
PUBLIC_APP: Final = "public_app"
CONFIDENTIAL_APP: Final = "confidential_app"
APP_KINDS: Final = frozenset({PUBLIC_APP, CONFIDENTIAL_APP})
LAUNCH_TYPES: Final = frozenset({"ehr", "standalone"})
# Scopes that grant no resource access: identity, launch context, refresh-token lifetime.
CONTEXT_SCOPES: Final = frozenset(
    {
        "openid",
        "fhirUser",
        "profile",
        "launch",
        "launch/patient",
        "launch/encounter",
        "offline_access",
        "online_access",
    }
)
_MAX_REDIRECT_URIS: Final = 10
_LOOPBACK_HOSTS: Final = frozenset({"localhost"})
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
    redirect_uris: tuple[str, ...] = ()
    launch_types: tuple[str, ...] = ()
    launch_uri: str | None = None
    # How the client authenticates at the token endpoint.
    auth_method: Literal["private_key_jwt", "client_secret_basic", "none"] = "private_key_jwt"
    # A confidential app's shared secret: only in the answer to its registration.
    client_secret: str | None = field(default=None, repr=False)


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


def _auth_method(client: SmartClient) -> Literal["private_key_jwt", "client_secret_basic", "none"]:
    if client.kind == PUBLIC_APP:
        return "none"
    return "client_secret_basic" if client.secret_hash is not None else "private_key_jwt"


def _view(client: SmartClient, tenant: str, secret: str | None = None) -> RegisteredSmartClient:
    return RegisteredSmartClient(
        client_id=client.client_id,
        name=client.name,
        tenant=tenant,
        kind=client.kind,
        scopes=tuple(client.scopes),
        key_ids=tuple(str(key["kid"]) for key in client.jwks.get("keys", [])),
        disabled=client.disabled_at is not None,
        redirect_uris=tuple(client.redirect_uris or ()),
        launch_types=tuple(client.launch_types or ()),
        launch_uri=client.launch_uri,
        auth_method=_auth_method(client),
        client_secret=secret,
    )


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(client: SmartClient, secret: str) -> bool:
    """Constant-time check of a confidential app's shared secret."""
    if client.secret_hash is None or not secret:
        return False
    return hmac.compare_digest(client.secret_hash, _secret_hash(secret))


def app_scope_problem(scope: str) -> str | None:
    """Why an app may not ask for ``scope`` (None: a ``patient/``/``user/`` resource scope, v2
    or v1, or a SMART context scope)."""
    if scope in CONTEXT_SCOPES:
        return None
    context, _, rest = scope.partition("/")
    if context not in ("patient", "user"):
        return f"{scope!r} is not a patient/, user/ or SMART context scope"
    problem = system_scope_problem(f"system/{rest}")
    return None if problem is None else problem.replace("system/", f"{context}/")


def _redirect_problem(uri: str) -> str | None:
    if len(uri) > 2000:
        return "a redirect URI is longer than 2000 characters"
    try:
        parts = urlsplit(uri)
    except ValueError:
        return f"{uri!r} is not a URL"
    if parts.fragment or "#" in uri:
        return f"{uri!r}: a redirect URI has no fragment"
    if not parts.hostname:
        return f"{uri!r} is not an absolute URL"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http":
        host = parts.hostname
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host in _LOOPBACK_HOSTS
        if loopback:
            return None
    return f"{uri!r}: redirect URIs use https (or http on a loopback address)"


def _checked_redirect_uris(uris: Iterable[str]) -> list[str]:
    listed = list(dict.fromkeys(uris))
    if not listed or len(listed) > _MAX_REDIRECT_URIS:
        raise RequestValidationFailed(f"An app needs 1 to {_MAX_REDIRECT_URIS} redirect URIs")
    for uri in listed:
        problem = _redirect_problem(uri)
        if problem is not None:
            raise RequestValidationFailed(problem)
    return listed


def _checked_name(name: str) -> str:
    if not name.strip() or len(name) > 200:
        raise RequestValidationFailed("A client needs a name of at most 200 characters")
    return name.strip()


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
    owner = await _tenant(session, tenant)
    client = SmartClient(
        tenant_id=owner.id,
        # Hex: never starts with "-" (a command-line argument) and needs no URL encoding.
        client_id=secrets.token_hex(20),
        name=_checked_name(name),
        kind=BACKEND_SERVICE,
        jwks=_checked_jwks(jwks),
        scopes=wanted,
        created_by=created_by,
    )
    session.add(client)
    await session.flush()
    return _view(client, owner.slug)


async def register_app(
    session: AsyncSession,
    *,
    tenant: str,
    name: str,
    confidential: bool,
    redirect_uris: Iterable[str],
    scopes: Iterable[str],
    launch_types: Iterable[str] = ("ehr", "standalone"),
    launch_uri: str | None = None,
    jwks: object | None = None,
    created_by: str | None = None,
) -> RegisteredSmartClient:
    """Register a SMART app. A confidential app with ``jwks`` authenticates with
    ``private_key_jwt``; without, it gets a shared secret (in the answer only, never again)."""
    wanted = sorted(set(scopes))
    if not wanted:
        raise RequestValidationFailed("An app needs at least one scope")
    for scope in wanted:
        problem = app_scope_problem(scope)
        if problem is not None:
            raise RequestValidationFailed(problem)
    launches = sorted(set(launch_types))
    if not launches or set(launches) - LAUNCH_TYPES:
        raise RequestValidationFailed("Launch types are some of 'ehr' and 'standalone'")
    if launch_uri is not None:
        problem = _redirect_problem(launch_uri)
        if problem is not None:
            raise RequestValidationFailed(problem.replace("redirect URI", "launch URI"))
    if jwks is not None and not confidential:
        raise RequestValidationFailed("A public app has no keys: it uses PKCE only")
    owner = await _tenant(session, tenant)
    secret = secrets.token_urlsafe(32) if confidential and jwks is None else None
    client = SmartClient(
        tenant_id=owner.id,
        client_id=secrets.token_hex(20),
        name=_checked_name(name),
        kind=CONFIDENTIAL_APP if confidential else PUBLIC_APP,
        jwks=_checked_jwks(jwks) if jwks is not None else {"keys": []},
        scopes=wanted,
        redirect_uris=_checked_redirect_uris(redirect_uris),
        launch_types=launches,
        launch_uri=launch_uri,
        secret_hash=_secret_hash(secret) if secret is not None else None,
        created_by=created_by,
    )
    session.add(client)
    await session.flush()
    return _view(client, owner.slug, secret)


async def find_client(session: AsyncSession, client_id: str) -> SmartClient | None:
    """The registered client ``client_id`` (any tenant: client ids are unique), or None."""
    if not client_id or len(client_id) > 64:
        return None
    return await session.scalar(select(SmartClient).where(SmartClient.client_id == client_id))


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
