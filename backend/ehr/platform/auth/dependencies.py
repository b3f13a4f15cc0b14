"""Authentication: who is calling (deny unless proven), at the cost of one Redis round trip.

:func:`authenticate` resolves a credential to a :class:`~ehr.platform.auth.principal.Principal`:

* ``Authorization: Bearer <access token>`` — an ES256 JWT from ``POST /api/auth/login``
  (:mod:`ehr.platform.auth.tokens`), not deny-listed (:mod:`ehr.platform.auth.revocation`), for a
  user and tenant that are still active; roles are the token's roles that the user STILL holds (a
  removed role stops working at once, an added one needs a new token);
* ``X-API-Key: ehrk_...`` or ``Authorization: Bearer ehrk_...`` — a live API key of an active
  tenant (:mod:`ehr.platform.auth.api_keys`).

Anything else — no credential, two credentials, malformed, expired, revoked, unknown — is 401
problem+json (:class:`~ehr.platform.auth.tokens.BearerChallenge`, ``WWW-Authenticate: Bearer``);
over the rate limit (when the caller asks for one) is 429 with ``Retry-After``.

A warm bearer request costs: the token's verified claims from the process's cache
(:func:`~ehr.platform.auth.tokens.verify_access_token_cached`), ONE Redis round trip
(:mod:`ehr.platform.auth.request_checks`: deny-list, the account's change stamps, the rate limit)
and the account from the principal cache (:mod:`ehr.platform.auth.principal_cache`) — no
PostgreSQL at all. PostgreSQL is asked (one pooled connection, AUTOCOMMIT: no BEGIN/COMMIT, opened
only then and released before the handler runs) when the account is not cached under the current
stamps, the deny-list is not warm in Redis, the verification keys must be reloaded, or Redis is
unreachable (docs/adr/0013-outages.md: the deny-list and the account come from PostgreSQL, the
rate limit counts in process). An API key is the same, keyed by its hash: its first request
reads PostgreSQL, its ``last_used_at`` is written at most once a minute (the gate is in the round
trip). A request without credentials is refused without touching any backing service. The
verified access-token claims are left in ``request.state.access_claims`` (logout needs them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import TracebackType
from typing import Annotated, Final

import structlog
from fastapi import Depends, Request
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import ApiKey, SmartClient, Tenant
from ehr.core.dependencies import AppResources, get_resources
from ehr.core.redis_store import redis_health
from ehr.platform.auth.api_keys import (
    LAST_USED_INTERVAL_SECONDS,
    hash_api_key,
    key_permissions,
    key_scopes,
    last_used_key,
    looks_like_api_key,
    resolve_api_key,
)
from ehr.platform.auth.delegation import delegable_scopes
from ehr.platform.auth.principal import Principal
from ehr.platform.auth.principal_cache import (
    AccountSnapshot,
    ApiKeySnapshot,
    api_key_version_key,
    principal_cache,
    tenant_version_key,
    user_version_key,
)
from ehr.platform.auth.rate_limit import RateWindow, count_locally
from ehr.platform.auth.request_checks import Checked, check_in_redis
from ehr.platform.auth.revocation import deny_ids, revoked_in_postgres
from ehr.platform.auth.service import load_account
from ehr.platform.auth.tokens import AccessClaims, BearerChallenge, verify_access_token_cached

__all__ = ["CurrentPrincipal", "access_claims", "authenticate", "get_current_principal"]

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


class _Database:
    """The request's session, opened on first use only (a warm request never opens one)."""

    def __init__(self, resources: AppResources) -> None:
        self._resources = resources
        self._session: AsyncSession | None = None

    async def session(self) -> AsyncSession:
        if self._session is None:
            session = self._resources.sessionmaker()
            # Reads (and one last-used UPDATE): no transaction, no BEGIN/COMMIT round trips.
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            self._session = session
        return self._session

    async def __aenter__(self) -> _Database:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()


def _rate(subject: object, per_minute: int | None) -> RateWindow | None:
    return None if per_minute is None else RateWindow.now_for(str(subject), per_minute)


def _enforce_rate(
    resources: AppResources, rate: RateWindow | None, checked: Checked | None
) -> None:
    if rate is None:
        return
    count = checked.rate_count if checked is not None else None
    if count is None:
        count = count_locally(redis_health(resources.redis), rate)
    rate.enforce(count)


async def authenticate(
    request: Request, resources: AppResources, *, rate_limit_per_minute: int | None = None
) -> Principal:
    """Authenticate the request (bearer access token or API key) or raise 401; with
    ``rate_limit_per_minute``, also count it against the principal's window (429 when over)."""
    credential = _credential(request)
    async with _Database(resources) as db:
        if looks_like_api_key(credential):
            return await _api_key_principal(resources, db, credential, rate_limit_per_minute)
        claims = await verify_access_token_cached(db.session, resources.settings, credential)
        if claims.client_id is not None and not claims.delegated:
            principal = await _smart_client_principal(resources, db, claims, rate_limit_per_minute)
        else:
            principal = await _user_principal(resources, db, claims, rate_limit_per_minute)
    request.state.access_claims = claims
    return principal


async def get_current_principal(request: Request) -> Principal:
    """The FastAPI dependency of every /api route: :func:`authenticate`, no rate limit."""
    return await authenticate(request, get_resources(request))


async def _user_principal(
    resources: AppResources, db: _Database, claims: AccessClaims, per_minute: int | None
) -> Principal:
    redis = resources.redis
    ids = deny_ids(claims.jti, claims.session_id)
    rate = _rate(claims.subject, per_minute)
    checked = await check_in_redis(
        redis,
        deny_ids=ids,
        version_keys=(user_version_key(claims.subject), tenant_version_key(claims.tenant_id)),
        rate=rate,
    )
    if checked is not None and checked.ready:
        revoked = checked.denied
    else:
        revoked = await revoked_in_postgres(
            await db.session(), redis, ids, redis_reachable=checked is not None
        )
    if revoked:
        logger.info("auth.token.refused", reason="revoked")
        raise BearerChallenge("The access token has been revoked")
    account = await _account(resources, db, claims, checked)
    if (
        account is None
        or not account.active
        or account.tenant_id != claims.tenant_id
        or account.tenant_slug != claims.tenant
    ):
        logger.info("auth.token.refused", reason="account_inactive")
        raise BearerChallenge("The account is not active")
    _enforce_rate(resources, rate, checked)
    if claims.delegated:
        return await _app_principal(db, claims, account)
    return Principal(
        kind="user",
        subject=account.user_id,
        tenant=account.tenant_slug,
        tenant_id=account.tenant_id,
        roles=claims.roles & account.roles,
        scopes=claims.scopes,
        token_id=claims.jti,
        username=account.username,
        patient_id=account.patient_id,
    )


async def _app_principal(
    db: _Database, claims: AccessClaims, account: AccountSnapshot
) -> Principal:
    """A SMART app acting for a user: no roles (the business API is not the app's), the
    consented scopes narrowed to what the user may delegate now, and the launch patient (a
    portal user's own patient, whatever the token says)."""
    session = await db.session()
    client = await session.scalar(
        select(SmartClient).where(SmartClient.client_id == claims.client_id)
    )
    if client is None or client.disabled_at is not None or client.tenant_id != claims.tenant_id:
        logger.info("auth.token.refused", reason="client_inactive")
        raise BearerChallenge("The client is not active")
    patient = claims.patient
    if account.patient_id is not None:
        if patient is not None and patient != account.patient_id:
            logger.info("auth.token.refused", reason="patient_context")
            raise BearerChallenge("The token's patient is not the user's")
        patient = account.patient_id
    return Principal(
        kind="user",
        subject=account.user_id,
        tenant=account.tenant_slug,
        tenant_id=account.tenant_id,
        roles=frozenset(),
        scopes=delegable_scopes(claims.scopes, account.roles),
        token_id=claims.jti,
        username=account.username,
        patient_id=patient,
    )


async def _smart_client_principal(
    resources: AppResources, db: _Database, claims: AccessClaims, per_minute: int | None
) -> Principal:
    """A SMART Backend Services token: its client still registered, enabled and in the token's
    tenant (checked on every request: disabling a client stops its tokens at once)."""
    redis = resources.redis
    rate = _rate(claims.subject, per_minute)
    checked = await check_in_redis(
        redis, deny_ids=deny_ids(claims.jti, None), version_keys=(), rate=rate
    )
    if checked is not None and checked.ready:
        revoked = checked.denied
    else:
        reachable = checked is not None
        revoked = await revoked_in_postgres(
            await db.session(), redis, deny_ids(claims.jti, None), redis_reachable=reachable
        )
    if revoked:
        logger.info("auth.token.refused", reason="revoked")
        raise BearerChallenge("The access token has been revoked")
    session = await db.session()
    client = await session.get(SmartClient, claims.subject)
    tenant = await session.get(Tenant, claims.tenant_id)
    if (
        client is None
        or client.disabled_at is not None
        or client.client_id != claims.client_id
        or client.tenant_id != claims.tenant_id
        or tenant is None
        or tenant.slug != claims.tenant
        or tenant.status != "active"
    ):
        logger.info("auth.token.refused", reason="client_inactive")
        raise BearerChallenge("The client is not active")
    _enforce_rate(resources, rate, checked)
    return Principal(
        kind="smart_client",
        subject=client.id,
        tenant=tenant.slug,
        tenant_id=tenant.id,
        roles=frozenset(),
        scopes=claims.scopes & frozenset(client.scopes),
        token_id=claims.jti,
        username=client.client_id,
    )


async def _account(
    resources: AppResources, db: _Database, claims: AccessClaims, checked: Checked | None
) -> AccountSnapshot | None:
    """The account from the cache when loaded under the stamps just read, else PostgreSQL."""
    max_age = resources.settings.auth.principal_cache_seconds
    cache = principal_cache(resources.redis)
    if checked is not None and max_age > 0:
        cached = cache.user(claims.subject, checked.stamp, max_age)
        if cached is not None:
            return cached
    loaded = await load_account(await db.session(), claims.subject)
    if loaded is None:
        return None
    account = AccountSnapshot(
        user_id=loaded.user.id,
        username=loaded.user.username,
        patient_id=loaded.user.patient_id,
        tenant_id=loaded.tenant.id,
        tenant_slug=loaded.tenant.slug,
        roles=loaded.roles,
        active=loaded.active,
    )
    if checked is not None and max_age > 0:
        # The stamps were read before this load: a change committed after it has another one.
        cache.store_user(account, checked.stamp)
    return account


async def _api_key_principal(
    resources: AppResources, db: _Database, credential: str, per_minute: int | None
) -> Principal:
    max_age = resources.settings.auth.principal_cache_seconds
    cache = principal_cache(resources.redis)
    key_hash = hash_api_key(credential)
    known = cache.api_key_ids(key_hash) if max_age > 0 else None
    checked: Checked | None = None
    rate: RateWindow | None = None
    identity: ApiKeySnapshot | None = None
    if known is not None:
        # Ids known from an earlier request: the stamps are read BEFORE the database is.
        rate = _rate(known.key_id, per_minute)
        checked = await _key_checks(resources, known, rate)
        if checked is not None:
            identity = cache.api_key(key_hash, checked.stamp, max_age)
    if identity is None:
        identity = await _load_api_key(await db.session(), credential)
        if identity is None:
            cache.forget_api_key(key_hash)
            logger.info("auth.api_key.refused")
            raise BearerChallenge("The API key is invalid, expired or revoked")
        if known is None or known.key_id != identity.key_id:
            # First sight: these stamps come after the load, so only the ids are kept (trusted
            # once a later request has read its stamps before loading).
            rate = _rate(identity.key_id, per_minute)
            checked = await _key_checks(resources, identity, rate)
            if max_age > 0:
                cache.store_api_key(key_hash, identity, None)
        elif checked is not None:
            cache.store_api_key(key_hash, identity, checked.stamp)
    if checked is None or checked.first_use:
        # At most once a minute per key (the gate in the round trip); every use without Redis.
        await (await db.session()).execute(
            update(ApiKey)
            .where(ApiKey.id == identity.key_id)
            .values(last_used_at=datetime.now(UTC))
        )
    _enforce_rate(resources, rate, checked)
    return Principal(
        kind="api_key",
        subject=identity.key_id,
        tenant=identity.tenant_slug,
        tenant_id=identity.tenant_id,
        roles=identity.roles,
        scopes=identity.scopes,
        key_permissions=identity.key_permissions,
    )


async def _key_checks(
    resources: AppResources, key: ApiKeySnapshot, rate: RateWindow | None
) -> Checked | None:
    return await check_in_redis(
        resources.redis,
        version_keys=(api_key_version_key(key.key_id), tenant_version_key(key.tenant_id)),
        rate=rate,
        used_key=last_used_key(key.key_id),
        used_ttl_seconds=LAST_USED_INTERVAL_SECONDS,
    )


async def _load_api_key(session: AsyncSession, credential: str) -> ApiKeySnapshot | None:
    found = await resolve_api_key(session, credential)
    if found is None:
        return None
    key, tenant = found.key, found.tenant
    return ApiKeySnapshot(
        key_id=key.id,
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        roles=frozenset(key.roles),
        scopes=key_scopes(key),
        key_permissions=key_permissions(key),
        expires_at=key.expires_at.timestamp(),
    )


def access_claims(request: Request) -> AccessClaims | None:
    """The verified access-token claims of this request (None for API keys)."""
    claims = getattr(request.state, "access_claims", None)
    return claims if isinstance(claims, AccessClaims) else None


CurrentPrincipal = Annotated[Principal, Depends(get_current_principal)]
