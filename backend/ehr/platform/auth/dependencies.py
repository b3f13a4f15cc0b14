"""The authentication dependency: who is calling (deny unless proven).

``CurrentPrincipal`` resolves a credential to a :class:`~ehr.platform.auth.principal.Principal`:

* ``Authorization: Bearer <access token>`` — an ES256 JWT from ``POST /api/auth/login``
  (:mod:`ehr.platform.auth.tokens`), not deny-listed (:mod:`ehr.platform.auth.revocation`), for a
  user and tenant
  that are still active; roles are the token's roles that the user STILL holds (a removed role
  stops working at once, an added one needs a new token);
* ``X-API-Key: ehrk_...`` or ``Authorization: Bearer ehrk_...`` — a live API key of an active
  tenant (:mod:`ehr.platform.auth.api_keys`).

Anything else — no credential, two credentials, malformed, expired, revoked, unknown — is 401
problem+json (:class:`~ehr.platform.auth.tokens.BearerChallenge`, ``WWW-Authenticate: Bearer``).

A bearer token is checked with reads on one pooled connection (no transaction: no BEGIN/COMMIT
round trips), released before the handler runs. An API key is checked in its own short
transaction, so its ``last_used_at`` is recorded even when the handler fails. A request without
credentials is refused without touching the database. The verified access-token claims are left
in ``request.state.access_claims`` (logout needs the jti and refresh family).
"""

from __future__ import annotations

from typing import Annotated, Final

import structlog
from fastapi import Depends, Request

from ehr.core.dependencies import AppResources, get_resources
from ehr.platform.auth.api_keys import (
    key_permissions,
    key_scopes,
    looks_like_api_key,
    mark_used,
    resolve_api_key,
)
from ehr.platform.auth.principal import Principal
from ehr.platform.auth.revocation import is_revoked
from ehr.platform.auth.service import load_account
from ehr.platform.auth.tokens import AccessClaims, BearerChallenge, verify_access_token

__all__ = ["CurrentPrincipal", "access_claims", "get_current_principal"]

logger = structlog.get_logger(__name__)

_MAX_CREDENTIAL_LENGTH: Final = 8192


def _credential(request: Request) -> str:
    api_key = request.headers.get("x-api-key")
    authorization = request.headers.get("authorization")
    if api_key is not None and authorization is not None:
        raise BearerChallenge("Present one credential, not both X-API-Key and Authorization")
    if api_key is not None:
        credential = api_key.strip()
        if not looks_like_api_key(credential):
            raise BearerChallenge("The API key is invalid")
    elif authorization is not None:
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise BearerChallenge("Use 'Authorization: Bearer <token>'", error="invalid_request")
    else:
        raise BearerChallenge("No credentials were presented", error=None)
    if len(credential) > _MAX_CREDENTIAL_LENGTH:
        raise BearerChallenge("The credential is invalid")
    return credential


async def get_current_principal(request: Request) -> Principal:
    """Authenticate the request (bearer access token or API key) or raise 401."""
    credential = _credential(request)
    resources = get_resources(request)
    settings = resources.settings
    if looks_like_api_key(credential):
        return await _api_key_principal(resources, credential)
    async with resources.sessionmaker() as session:
        # Reads only: no transaction (saves the BEGIN and COMMIT round trips on every request).
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        claims = await verify_access_token(session, settings, credential)
        if await is_revoked(session, resources.redis, jti=claims.jti, session_id=claims.session_id):
            logger.info("auth.token.refused", reason="revoked")
            raise BearerChallenge("The access token has been revoked")
        account = await load_account(session, claims.subject)
        if (
            account is None
            or not account.active
            or account.tenant.id != claims.tenant_id
            or account.tenant.slug != claims.tenant
        ):
            logger.info("auth.token.refused", reason="account_inactive")
            raise BearerChallenge("The account is not active")
    request.state.access_claims = claims
    return Principal(
        kind="user",
        subject=account.user.id,
        tenant=account.tenant.slug,
        tenant_id=account.tenant.id,
        roles=claims.roles & account.roles,
        scopes=claims.scopes,
        token_id=claims.jti,
        username=account.user.username,
        patient_id=account.user.patient_id,
    )


async def _api_key_principal(resources: AppResources, credential: str) -> Principal:
    async with resources.sessionmaker() as session, session.begin():
        identity = await resolve_api_key(session, credential)
        if identity is None:
            logger.info("auth.api_key.refused")
            raise BearerChallenge("The API key is invalid, expired or revoked")
        key, tenant = identity.key, identity.tenant
        await mark_used(session, resources.redis, key.id)
        return Principal(
            kind="api_key",
            subject=key.id,
            tenant=tenant.slug,
            tenant_id=tenant.id,
            roles=frozenset(key.roles),
            scopes=key_scopes(key),
            key_permissions=key_permissions(key),
        )


def access_claims(request: Request) -> AccessClaims | None:
    """The verified access-token claims of this request (None for API keys)."""
    claims = getattr(request.state, "access_claims", None)
    return claims if isinstance(claims, AccessClaims) else None


CurrentPrincipal = Annotated[Principal, Depends(get_current_principal)]
