"""The registry of trusted CDS clients (``cds_clients``): register, list, disable, enable.

A client is bound to one tenant and named by its JWT issuer (``iss``, unique across tenants). Its
public keys are a JWKS stored here and/or the ``jku`` URLs it may name (exact matches; https, or
http on a loopback host for development). Registration refuses anything but public EC/RSA signing
keys with a ``kid`` (``oct`` keys, private members, OKP — python-jose cannot verify EdDSA — RSA
below 2048 bits). ``fhir_servers`` are the FHIR servers the client may name in ``fhirServer``.

The caller owns the transaction (commit after success). Clients are never deleted here: disabling
one makes :mod:`ehr.modules.cds_hooks.client_auth` refuse its tokens at once.
"""

# The names follow ehr.core.errors (an HTTP meaning, not an "...Error" suffix).
# ruff: noqa: N818

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import CdsClient
from ehr.core.errors import BadRequestError, ConflictError, NotFoundError
from ehr.modules.cds_hooks.client_auth import jwk_problem
from ehr.platform.tenancy.service import get_tenant_by_slug

__all__ = [
    "MAX_KEYS",
    "CdsClientConflict",
    "CdsClientNotFound",
    "InvalidCdsClient",
    "disable_client",
    "enable_client",
    "get_client",
    "list_clients",
    "register_client",
    "set_client_enabled",
    "validate_issuer",
    "validate_jwks",
    "validate_url",
]

logger = structlog.get_logger(__name__)

MAX_KEYS: Final = 20
_MAX_ISSUER: Final = 255
_MAX_NAME: Final = 200
_MAX_URL: Final = 2048
_LOOPBACK_NAMES: Final = frozenset({"localhost"})


class InvalidCdsClient(BadRequestError):
    code = "invalid_cds_client"
    title = "Invalid CDS client"


class CdsClientNotFound(NotFoundError):
    code = "cds_client_not_found"
    title = "CDS client not found"


class CdsClientConflict(ConflictError):
    code = "cds_client_conflict"
    title = "CDS client conflict"


def validate_issuer(issuer: str) -> str:
    issuer = issuer.strip()
    if not issuer or len(issuer) > _MAX_ISSUER or any(c.isspace() for c in issuer):
        raise InvalidCdsClient("An issuer is 1-255 characters without spaces (the JWT 'iss')")
    return issuer


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_url(url: str, *, what: str) -> str:
    """An absolute https URL (http only on a loopback host), without credentials or fragment."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise InvalidCdsClient(f"The {what} '{url}' is not a URL") from None
    if len(url) > _MAX_URL or parts.scheme not in ("https", "http") or not host:
        raise InvalidCdsClient(f"The {what} '{url}' is not an absolute http(s) URL")
    if parts.scheme == "http" and not _is_loopback(host):
        raise InvalidCdsClient(f"The {what} '{url}' must use https (http only on localhost)")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise InvalidCdsClient(f"The {what} '{url}' must not carry credentials or a fragment")
    return url


def _unique_urls(urls: Iterable[str], *, what: str) -> list[str]:
    result: list[str] = []
    for url in urls:
        valid = validate_url(url, what=what)
        if valid not in result:
            result.append(valid)
    return result


def validate_jwks(jwks: object) -> dict[str, Any]:
    """A JWKS document of public EC/RSA signing keys, each with a distinct ``kid``."""
    if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
        raise InvalidCdsClient('A JWKS is a JSON object {"keys": [...]}')
    keys: list[Any] = jwks["keys"]
    if not keys or len(keys) > MAX_KEYS:
        raise InvalidCdsClient(f"A JWKS holds 1-{MAX_KEYS} keys")
    kids: set[str] = set()
    for key in keys:
        problem = jwk_problem(key)
        if problem is not None:
            raise InvalidCdsClient(f"JWKS refused: {problem}")
        kid = key["kid"]
        if kid in kids:
            raise InvalidCdsClient(f"JWKS refused: the kid {kid!r} appears twice")
        kids.add(kid)
    return {"keys": [dict(key) for key in keys]}


async def get_client(session: AsyncSession, issuer: str) -> CdsClient:
    client = await session.scalar(select(CdsClient).where(CdsClient.issuer == issuer.strip()))
    if client is None:
        raise CdsClientNotFound(f"No CDS client with issuer '{issuer.strip()}'")
    return client


async def register_client(
    session: AsyncSession,
    *,
    tenant_slug: str,
    issuer: str,
    name: str,
    jwks: object | None = None,
    jku_allowlist: Iterable[str] = (),
    fhir_servers: Iterable[str] = (),
    first_party: bool = False,
) -> CdsClient:
    """Register a client of the tenant ``tenant_slug`` (409 if the issuer is already taken)."""
    issuer = validate_issuer(issuer)
    name = name.strip()
    if not name or len(name) > _MAX_NAME:
        raise InvalidCdsClient(f"A client name is 1-{_MAX_NAME} characters")
    stored = validate_jwks(jwks) if jwks is not None else None
    jku = _unique_urls(jku_allowlist, what="jku URL")
    servers = _unique_urls(fhir_servers, what="FHIR server")
    if stored is None and not jku:
        raise InvalidCdsClient("A client needs its public keys: a JWKS, a jku URL, or both")
    tenant = await get_tenant_by_slug(session, tenant_slug)
    if tenant.status != "active":
        raise CdsClientConflict(f"The tenant '{tenant.slug}' is disabled")
    if await session.scalar(select(CdsClient.id).where(CdsClient.issuer == issuer)) is not None:
        raise CdsClientConflict(f"The issuer '{issuer}' is already registered")
    client = CdsClient(
        tenant_id=tenant.id,
        issuer=issuer,
        name=name,
        jwks=stored,
        jku_allowlist=jku,
        fhir_servers=servers,
        first_party=first_party,
        enabled=True,
    )
    try:
        async with session.begin_nested():
            session.add(client)
            await session.flush()
    except IntegrityError:
        raise CdsClientConflict(f"The issuer '{issuer}' is already registered") from None
    logger.info(
        "cds_hooks.client.registered", iss=issuer, tenant=tenant.slug, first_party=first_party
    )
    return client


async def list_clients(session: AsyncSession, tenant_slug: str) -> list[CdsClient]:
    """The tenant's clients, by issuer."""
    tenant = await get_tenant_by_slug(session, tenant_slug)
    rows = await session.scalars(
        select(CdsClient).where(CdsClient.tenant_id == tenant.id).order_by(CdsClient.issuer)
    )
    return list(rows.all())


async def set_client_enabled(session: AsyncSession, issuer: str, enabled: bool) -> CdsClient:
    client = await get_client(session, issuer)
    client.enabled = enabled
    await session.flush()
    logger.info(
        "cds_hooks.client.enabled" if enabled else "cds_hooks.client.disabled", iss=client.issuer
    )
    return client


async def disable_client(session: AsyncSession, issuer: str) -> CdsClient:
    """Refuse the client's tokens from now on (its row and history stay)."""
    return await set_client_enabled(session, issuer, False)


async def enable_client(session: AsyncSession, issuer: str) -> CdsClient:
    return await set_client_enabled(session, issuer, True)
