"""``POST /oauth2/token``: SMART Backend Services (``client_credentials`` + ``private_key_jwt``).

The request is ``application/x-www-form-urlencoded`` (RFC 6749 §4.4); the answer is the token
JSON with ``Cache-Control: no-store``, or an OAuth error JSON (``invalid_request``,
``invalid_client`` 401, ``invalid_scope``, ``unsupported_grant_type``). Failed client
authentications count against the per-IP throttle of the login endpoints. Every grant and every
refusal is a security event in the audit trail; no assertion or token is ever logged.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ehr.core.config import Settings
from ehr.core.db.models import Tenant
from ehr.core.dependencies import ResourcesDep, SessionDep
from ehr.core.error_handlers import problem_responses
from ehr.core.intake import IntakeRoute
from ehr.platform.audit.recorder import record_security_event
from ehr.platform.auth.authorization import PublicRoute
from ehr.platform.auth.signing_keys import current_signing_key
from ehr.platform.auth.throttling import ensure_ip_allowed, record_ip_failure
from ehr.platform.auth.tokens import encode_access_token
from ehr.platform.smart.assertions import ASSERTION_TYPE, verify_assertion
from ehr.platform.smart.errors import OAuthError
from ehr.platform.smart.schemas import OAuthErrorBody, TokenBody

__all__ = ["TOKEN_PATH", "router", "token_endpoint_url"]

logger = structlog.get_logger(__name__)

TOKEN_PATH: Final = "/oauth2/token"  # noqa: S105 - a URL path, not a secret
_FORM: Final = "application/x-www-form-urlencoded"
_MAX_FORM_BYTES: Final = 32_768
_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Failed client authentications are counted per IP in their own window (the login's limit).
_THROTTLE_BUCKET: Final = "smart-token"

# IntakeRoute like every router: this route reads its form body itself (no JSON body parameter).
router = APIRouter(tags=["smart"], route_class=IntakeRoute)


def token_endpoint_url(settings: Settings) -> str:
    """The token endpoint as clients address it (the ``aud`` of their assertions)."""
    return f"{settings.gateway.public_base_url.rstrip('/')}{TOKEN_PATH}"


async def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != _FORM:
        raise OAuthError("invalid_request", f"The token request must be {_FORM}")
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        raise OAuthError("invalid_request", "The token request is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError) as exc:
        raise OAuthError("invalid_request", "The token request is not a valid form") from exc
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError("invalid_request", f"The parameter {name!r} is repeated")
        form[name] = value
    return form


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise OAuthError("invalid_request", f"The parameter {name!r} is missing")
    return value


@router.post(
    TOKEN_PATH,
    dependencies=[PublicRoute],
    response_model=TokenBody,
    responses={
        400: {"model": OAuthErrorBody, "description": "invalid_request, invalid_scope, …"},
        401: {"model": OAuthErrorBody, "description": "invalid_client"},
        **problem_responses(429),
    },
    summary="SMART Backend Services token (client_credentials with a signed client assertion)",
)
async def token(request: Request, session: SessionDep, resources: ResourcesDep) -> JSONResponse:
    """Exchange a client assertion for a ``system/``-scoped access token of the client's tenant."""
    settings = resources.settings
    ip = request.client.host if request.client is not None else "unknown"
    await ensure_ip_allowed(
        resources.redis,
        ip=ip,
        limit=settings.auth.login_attempts_per_ip_per_minute,
        bucket=_THROTTLE_BUCKET,
    )
    client_id: str | None = None
    tenant_slug: str | None = None
    try:
        form = await _form(request)
        if _required(form, "grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type", "Only client_credentials is supported here")
        if _required(form, "client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
        requested = _required(form, "scope").split()
        client = await verify_assertion(
            session,
            _required(form, "client_assertion"),
            client_id=form.get("client_id") or None,
            audience=token_endpoint_url(settings),
        )
        client_id = client.client_id
        owner = await session.get(Tenant, client.tenant_id)
        if owner is None or owner.status != "active":
            raise OAuthError("invalid_client", "The client's tenant is not active", status_code=401)
        tenant_slug = owner.slug
        granted = sorted(set(requested) & set(client.scopes))
        if not granted:
            raise OAuthError("invalid_scope", "No requested scope is allowed to the client")
        key = await current_signing_key(session, settings)
        issued = encode_access_token(
            key,
            settings,
            subject=client.id,
            tenant_id=owner.id,
            tenant=owner.slug,
            roles=(),
            scopes=granted,
            client_id=client.client_id,
        )
    except OAuthError as refusal:
        if refusal.status_code == 401:
            await record_ip_failure(resources.redis, ip=ip, bucket=_THROTTLE_BUCKET)
        logger.info("smart.token.refused", error=refusal.error, client_id=client_id)
        await record_security_event(
            resources.sessionmaker,
            action="smart:token",
            outcome="denied",
            tenant=tenant_slug or "_system",
            actor_type="smart_client",
            actor_id=client_id,
            request=request,
            http_status=refusal.status_code,
            details={"error": refusal.error},
        )
        return JSONResponse(
            OAuthErrorBody(error=refusal.error, error_description=refusal.description).model_dump(),
            status_code=refusal.status_code,
            headers=_NO_STORE,
        )
    logger.info("smart.token.issued", client_id=client_id, scopes=len(granted))
    await record_security_event(
        resources.sessionmaker,
        action="smart:token",
        outcome="success",
        tenant=owner.slug,
        actor_type="smart_client",
        actor_id=client_id,
        request=request,
        http_status=200,
        details={"grant_type": "client_credentials", "scope": " ".join(granted)},
    )
    body = TokenBody(access_token=issued.token, expires_in=issued.expires_in, scope=issued.scope)
    return JSONResponse(body.model_dump(), headers=_NO_STORE)
