"""Authenticate one call: the registered client, its keys, the token, the replay check, in order.

:func:`authenticate_cds_client` runs steps 1-7 of :mod:`ehr.modules.cds_hooks.client_auth`; the
client is read from PostgreSQL by its (unverified) issuer with one indexed read, no transaction.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ehr.core.config import CdsHooksSettings
from ehr.core.db.models import CdsClient, Tenant
from ehr.core.dependencies import AppResources
from ehr.core.errors import DependencyUnavailable
from ehr.modules.cds_hooks.client_auth.jwks import JwksCache, JwksFetchError
from ehr.modules.cds_hooks.client_auth.refusals import refuse
from ehr.modules.cds_hooks.client_auth.replay import record_jti
from ehr.modules.cds_hooks.client_auth.tokens import (
    TokenHeader,
    bearer_token,
    check_claims,
    expected_audience,
    read_header,
    unverified_issuer,
    verify_signature,
)
from ehr.platform.auth.client_keys import usable_keys

__all__ = ["CdsClientIdentity", "RegisteredClient", "authenticate_cds_client", "load_client"]

logger = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class CdsClientIdentity:
    """The authenticated CDS client of a request."""

    client_id: uuid.UUID
    name: str
    issuer: str
    tenant: str  # tenant slug = HAPI partition
    tenant_id: uuid.UUID
    fhir_servers: tuple[str, ...]
    first_party: bool
    token_id: str  # the JWT's jti


@dataclass(frozen=True, slots=True)
class RegisteredClient:
    """What authentication needs of a ``cds_clients`` row (and its tenant)."""

    client_id: uuid.UUID
    name: str
    issuer: str
    tenant: str
    tenant_id: uuid.UUID
    tenant_active: bool
    enabled: bool
    jwks: Mapping[str, Any] | None
    jku_allowlist: tuple[str, ...]
    fhir_servers: tuple[str, ...]
    first_party: bool


async def load_client(resources: AppResources, issuer: str) -> RegisteredClient | None:
    """The client registered under ``issuer`` (one read, no transaction), or None."""
    try:
        async with resources.sessionmaker() as session:
            # Reads only: no transaction (no BEGIN/COMMIT round trips on every call).
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            row = (
                await session.execute(
                    select(CdsClient, Tenant)
                    .join(Tenant, Tenant.id == CdsClient.tenant_id)
                    .where(CdsClient.issuer == issuer)
                )
            ).first()
    except (SQLAlchemyError, OSError) as exc:
        logger.warning("cds_hooks.client_auth.lookup_failed", error=type(exc).__name__)
        raise DependencyUnavailable("The CDS client registry is unavailable") from None
    if row is None:
        return None
    client, tenant = row[0], row[1]
    return RegisteredClient(
        client_id=client.id,
        name=client.name,
        issuer=client.issuer,
        tenant=tenant.slug,
        tenant_id=tenant.id,
        tenant_active=tenant.status == "active",
        enabled=client.enabled,
        jwks=client.jwks,
        jku_allowlist=tuple(client.jku_allowlist or ()),
        fhir_servers=tuple(client.fhir_servers or ()),
        first_party=client.first_party,
    )


async def _candidate_keys(
    client: RegisteredClient, header: TokenHeader, settings: CdsHooksSettings, cache: JwksCache
) -> tuple[dict[str, Any], ...]:
    """The client's keys named ``header.kid``: stored JWKS first, then allow-listed jku sets."""
    if header.jku is not None and header.jku not in client.jku_allowlist:
        raise refuse(
            "jku_not_allowed",
            "The JWT header's 'jku' is not on the client's allow-list",
            issuer=client.issuer,
        )
    stored = tuple(k for k in usable_keys(client.jwks) if k.get("kid") == header.kid)
    if stored:
        return stored
    urls = (header.jku,) if header.jku is not None else client.jku_allowlist
    for url in urls:
        try:
            found = await cache.keys(url, header.kid, settings)
        except JwksFetchError as exc:
            logger.warning(
                "cds_hooks.jwks.fetch_failed", url=url, iss=client.issuer, error=str(exc)
            )
            raise refuse(
                "jwks_unavailable",
                "The client's key set could not be fetched from its 'jku' URL",
                issuer=client.issuer,
            ) from None
        if found:
            return found
    raise refuse(
        "kid_unknown",
        "No key of the client matches the JWT's 'kid'",
        issuer=client.issuer,
    )


async def authenticate_cds_client(
    *,
    authorization: str | None,
    path: str,
    resources: AppResources,
    cache: JwksCache,
    now: float | None = None,
) -> CdsClientIdentity:
    """Authenticate a call to ``path`` (e.g. ``/cds-services/order-sign``) or raise 401/503."""
    settings = resources.settings
    cds = settings.cds_hooks
    token = bearer_token(authorization)
    header = read_header(token, cds)
    issuer = unverified_issuer(token)
    client = await load_client(resources, issuer)
    if client is None:
        raise refuse("issuer_unknown", "The issuer ('iss') is not a registered CDS client")
    if not client.enabled:
        raise refuse("client_disabled", "The CDS client is disabled", issuer=issuer)
    if not client.tenant_active:
        raise refuse("tenant_disabled", "The CDS client's tenant is disabled", issuer=issuer)
    keys = await _candidate_keys(client, header, cds, cache)
    claims = verify_signature(token, header, keys)
    current = time.time() if now is None else now
    verified = check_claims(
        claims,
        issuer=client.issuer,
        audience=expected_audience(settings, path),
        settings=cds,
        now=current,
    )
    await record_jti(resources.redis, verified, settings=cds, now=current)
    logger.debug("cds_hooks.client_auth.accepted", iss=issuer, tenant=client.tenant)
    return CdsClientIdentity(
        client_id=client.client_id,
        name=client.name,
        issuer=client.issuer,
        tenant=client.tenant,
        tenant_id=client.tenant_id,
        fhir_servers=client.fhir_servers,
        first_party=client.first_party,
        token_id=verified.jti,
    )
