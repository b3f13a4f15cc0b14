"""Authentication routes (``/api/auth``), the JWKS, and API-key administration.

Public (``PublicRoute``): login, MFA login, token refresh, JWKS — all but the JWKS throttled per
client IP. Everything else requires a permission: ``self:manage`` for the caller's own session
and MFA, ``apikey:admin`` for the tenant's API keys.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, TypeVar

import structlog
from fastapi import APIRouter, FastAPI, Request, Response, status
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import ApiKey, User
from ehr.core.dependencies import AppResources, RedisDep, SessionDep, SettingsDep
from ehr.core.error_handlers import problem_responses
from ehr.core.errors import AuthenticationRequired, BadRequestError, NotFoundError, PermissionDenied
from ehr.core.intake import IntakeRoute
from ehr.platform.auth import api_keys, mfa, service
from ehr.platform.auth.authorization import PublicRoute, RequirePermission
from ehr.platform.auth.dependencies import access_claims
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal
from ehr.platform.auth.principal_cache import publish_principal_changes
from ehr.platform.auth.schemas import (
    ApiKeyCreated,
    ApiKeyCreateRequest,
    ApiKeyRotateRequest,
    ApiKeySummary,
    Jwks,
    LoginRequest,
    MeResponse,
    MfaChallengeResponse,
    MfaConfirmRequest,
    MfaConfirmResponse,
    MfaEnrolResponse,
    MfaLoginRequest,
    RefreshRequest,
    TokenResponse,
)
from ehr.platform.auth.signing_keys import build_jwks, ensure_signing_key
from ehr.platform.auth.throttling import ensure_ip_allowed, record_ip_failure

__all__ = ["router"]

logger = structlog.get_logger(__name__)


@asynccontextmanager
async def _signing_key_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Create the first signing key at start-up (replica-safe: advisory lock in
    :func:`ensure_signing_key`). Best effort: token issuance creates it lazily as well, so a
    database that is not reachable yet does not stop the process (readiness reports it)."""
    resources = getattr(app.state, "resources", None)
    if isinstance(resources, AppResources):
        try:
            async with asyncio.timeout(5), resources.sessionmaker() as session, session.begin():
                await ensure_signing_key(session, resources.settings)
        except Exception as exc:  # noqa: BLE001 - start-up must not fail on it (see docstring)
            logger.warning("auth.signing_key.ensure_failed", error_type=type(exc).__name__)
    yield


router = APIRouter(lifespan=_signing_key_lifespan, route_class=IntakeRoute)

SelfPrincipal = Annotated[Principal, RequirePermission(Permission.SELF_MANAGE)]
KeyAdmin = Annotated[Principal, RequirePermission(Permission.APIKEY_ADMIN)]


def _client_ip(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _user_agent(request: Request) -> str | None:
    return request.headers.get("user-agent")


T = TypeVar("T")


async def _throttled(
    redis: RedisDep, settings: SettingsDep, ip: str, attempt: Callable[[], Awaitable[T]]
) -> T:
    """Run a public authentication ``attempt`` under the per-IP failure throttle (a 401 counts
    as a failure; 429 comes before any credential is checked)."""
    await ensure_ip_allowed(redis, ip=ip, limit=settings.auth.login_attempts_per_ip_per_minute)
    try:
        return await attempt()
    except AuthenticationRequired:
        await record_ip_failure(redis, ip=ip)
        raise


def _tokens(pair: service.TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access.token,
        expires_in=pair.access.expires_in,
        refresh_token=pair.refresh.token,
        scope=pair.access.scope,
    )


async def _own_user(session: SessionDep, principal: Principal) -> User:
    if principal.kind != "user":
        raise PermissionDenied("Only a user (not an API key) can do this")
    user = await session.get(User, principal.subject, with_for_update=True)
    if user is None:
        raise NotFoundError("No such user")
    return user


# --- login, MFA login, refresh, logout, me ------------------------------------------------------


@router.post(
    "/api/auth/login",
    response_model=TokenResponse | MfaChallengeResponse,
    dependencies=[PublicRoute],
    responses=problem_responses(401, 422, 429),
    tags=["auth"],
)
async def login(
    body: LoginRequest,
    request: Request,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
) -> TokenResponse | MfaChallengeResponse:
    """Log in with tenant, username and password.

    Without MFA: access and refresh tokens. With MFA enabled: ``mfa_required`` and a one-use
    ``mfa_token`` for ``POST /api/auth/login/mfa``. Unknown tenant, unknown user, wrong password
    and a locked account all give the same 401.
    """
    ip = _client_ip(request)
    result = await _throttled(
        redis,
        settings,
        ip,
        lambda: service.login(
            session,
            settings,
            tenant=body.tenant,
            username=body.username,
            password=body.password,
            source_ip=ip,
            user_agent=_user_agent(request),
        ),
    )
    if result.tokens is None:
        assert result.mfa_token is not None  # noqa: S101 - one of the two is always set
        return MfaChallengeResponse(mfa_token=result.mfa_token)
    return _tokens(result.tokens)


@router.post(
    "/api/auth/login/mfa",
    response_model=TokenResponse,
    dependencies=[PublicRoute],
    responses=problem_responses(401, 422, 429),
    tags=["auth"],
)
async def login_mfa(
    body: MfaLoginRequest,
    request: Request,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
) -> TokenResponse:
    """Second login step: the ``mfa_token`` plus a TOTP ``code`` or a ``recovery_code``."""
    ip = _client_ip(request)
    pair = await _throttled(
        redis,
        settings,
        ip,
        lambda: service.complete_mfa_login(
            session,
            settings,
            mfa_token=body.mfa_token,
            code=body.code,
            recovery_code=body.recovery_code,
            source_ip=ip,
            user_agent=_user_agent(request),
        ),
    )
    return _tokens(pair)


@router.post(
    "/api/auth/token/refresh",
    response_model=TokenResponse,
    dependencies=[PublicRoute],
    responses=problem_responses(401, 422, 429),
    tags=["auth"],
)
async def refresh(
    body: RefreshRequest,
    request: Request,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
) -> TokenResponse:
    """Exchange a refresh token for new tokens (rotation). A refresh token that was already
    used revokes its whole family."""
    ip = _client_ip(request)
    pair = await _throttled(
        redis,
        settings,
        ip,
        lambda: service.refresh_tokens(
            session,
            redis,
            settings,
            refresh_token=body.refresh_token,
            source_ip=ip,
            user_agent=_user_agent(request),
        ),
    )
    return _tokens(pair)


@router.post(
    "/api/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403),
    tags=["auth"],
)
async def logout(
    principal: SelfPrincipal,
    request: Request,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
) -> Response:
    """Revoke the presented access token and its refresh-token family."""
    claims = access_claims(request)
    if principal.kind != "user" or claims is None:
        raise BadRequestError("API keys are revoked by an administrator, not logged out")
    await service.logout(session, redis, settings, claims=claims)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/api/auth/me",
    response_model=MeResponse,
    responses=problem_responses(401, 403),
    tags=["auth"],
)
async def me(principal: SelfPrincipal, session: SessionDep) -> MeResponse:
    """Who the credential belongs to: tenant, roles, permissions and scopes."""
    mfa_enabled: bool | None = None
    if principal.kind == "user":
        user = await session.get(User, principal.subject)
        mfa_enabled = user.mfa_enabled if user is not None else None
    return MeResponse(
        kind=principal.kind,
        subject=principal.subject,
        tenant=principal.tenant,
        tenant_id=principal.tenant_id,
        username=principal.username,
        roles=sorted(principal.roles),
        permissions=sorted(principal.permissions),
        scopes=sorted(principal.scopes),
        patient_id=principal.patient_id,
        mfa_enabled=mfa_enabled,
    )


# --- MFA enrolment ------------------------------------------------------------------------------


@router.post(
    "/api/auth/mfa/enroll",
    response_model=MfaEnrolResponse,
    responses=problem_responses(401, 403, 409),
    tags=["auth"],
)
async def mfa_enroll(
    principal: SelfPrincipal, session: SessionDep, settings: SettingsDep
) -> MfaEnrolResponse:
    """Start TOTP enrolment: a new secret, its otpauth URI and a QR code (PNG, base64).
    Nothing changes for logins until ``/api/auth/mfa/confirm``."""
    user = await _own_user(session, principal)
    enrolment = await mfa.start_enrolment(session, settings, user)
    return MfaEnrolResponse(
        secret=enrolment.secret,
        otpauth_uri=enrolment.otpauth_uri,
        qr_png_base64=enrolment.qr_png_base64,
    )


@router.get(
    "/api/auth/mfa/qr.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "The pending enrolment's QR code."},
        **problem_responses(401, 403, 404),
    },
    tags=["auth"],
)
async def mfa_qr_png(
    principal: SelfPrincipal, session: SessionDep, settings: SettingsDep
) -> Response:
    """The QR code (PNG) of the caller's pending enrolment (after ``/api/auth/mfa/enroll``, before
    ``/api/auth/mfa/confirm``). Never cached."""
    user = await _own_user(session, principal)
    png = await mfa.pending_enrolment_qr(session, settings, user)
    return Response(content=png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.post(
    "/api/auth/mfa/confirm",
    response_model=MfaConfirmResponse,
    responses=problem_responses(400, 401, 403, 409, 422),
    tags=["auth"],
)
async def mfa_confirm(
    body: MfaConfirmRequest, principal: SelfPrincipal, session: SessionDep, settings: SettingsDep
) -> MfaConfirmResponse:
    """Confirm enrolment with a current code: MFA is required from the next login on. Returns
    one-time recovery codes (shown only now)."""
    user = await _own_user(session, principal)
    codes = await mfa.confirm_enrolment(session, settings, user, body.code)
    logger.info("auth.mfa.enabled", user_id=str(user.id))
    return MfaConfirmResponse(recovery_codes=codes)


# --- JWKS ---------------------------------------------------------------------------------------


@router.get(
    "/.well-known/jwks.json",
    response_model=Jwks,
    dependencies=[PublicRoute],
    tags=["auth"],
)
async def jwks(session: SessionDep, response: Response) -> Jwks:
    """Public keys (ES256, by ``kid``) of every signing key whose tokens may still be valid."""
    response.headers["Cache-Control"] = "public, max-age=60"
    return Jwks.model_validate(await build_jwks(session))


# --- API-key administration ---------------------------------------------------------------------


def _created_by(principal: Principal) -> str:
    return f"{principal.kind}:{principal.username or principal.subject}"


async def _tenant_key(session: SessionDep, principal: Principal, key_id: uuid.UUID) -> ApiKey:
    key = await session.get(ApiKey, key_id)
    if key is None or key.tenant_id != principal.tenant_id:
        raise NotFoundError("No such API key")
    return key


def _created(key: ApiKey, plaintext: str) -> ApiKeyCreated:
    return ApiKeyCreated.model_validate(
        {**ApiKeySummary.model_validate(key).model_dump(), "key": plaintext}
    )


@router.post(
    "/api/admin/api-keys",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 422),
    tags=["admin"],
)
async def create_key(
    body: ApiKeyCreateRequest, principal: KeyAdmin, session: SessionDep, settings: SettingsDep
) -> ApiKeyCreated:
    """Create an API key for the caller's tenant. The key is in this answer only."""
    key, plaintext = await api_keys.create_api_key(
        session,
        tenant_id=principal.tenant_id,
        name=body.name,
        roles=body.roles,
        permissions=body.permissions,
        scopes=body.scopes,
        ttl_days=body.ttl_days,
        created_by=_created_by(principal),
        max_ttl_days=settings.auth.api_key_max_ttl_days,
    )
    return _created(key, plaintext)


@router.get(
    "/api/admin/api-keys",
    response_model=list[ApiKeySummary],
    responses=problem_responses(401, 403),
    tags=["admin"],
)
async def list_keys(principal: KeyAdmin, session: SessionDep) -> list[ApiKeySummary]:
    """The tenant's API keys (never the keys themselves)."""
    keys = await api_keys.list_api_keys(session, principal.tenant_id)
    return [ApiKeySummary.model_validate(k) for k in keys]


async def _commit_and_publish(session: AsyncSession, redis: Redis) -> None:
    """Commit now (the request's commit after this is empty) and write the change stamps, so
    every API process stops using the key at once (ehr.platform.auth.principal_cache)."""
    await session.commit()
    await publish_principal_changes(redis)


@router.post(
    "/api/admin/api-keys/{key_id}/revoke",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
    tags=["admin"],
)
async def revoke_key(
    key_id: uuid.UUID, principal: KeyAdmin, session: SessionDep, redis: RedisDep
) -> Response:
    """Revoke an API key at once."""
    key = await _tenant_key(session, principal, key_id)
    await api_keys.revoke_api_key(session, key.id)
    await _commit_and_publish(session, redis)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/api/admin/api-keys/{key_id}/rotate",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 422),
    tags=["admin"],
)
async def rotate_key(
    key_id: uuid.UUID,
    principal: KeyAdmin,
    session: SessionDep,
    redis: RedisDep,
    body: ApiKeyRotateRequest | None = None,
) -> ApiKeyCreated:
    """Replace an API key (same grants and lifetime); the old one is revoked at once, or after
    ``grace_seconds``. The new key is in this answer only."""
    key = await _tenant_key(session, principal, key_id)
    new, plaintext = await api_keys.rotate_api_key(
        session,
        key.id,
        created_by=_created_by(principal),
        grace_seconds=body.grace_seconds if body is not None else 0,
    )
    created = _created(new, plaintext)
    await _commit_and_publish(session, redis)
    return created
