"""The SMART authorization server's routes (ADR 0032). Thin: the work is in the modules.

OAuth endpoints (public; their own error forms):

- ``GET /oauth2/authorize`` and the pages under it (``/login``, ``/mfa``, ``/consent``): the App
  Launch authorization-code flow (:mod:`ehr.platform.smart.authorizations`). Refusals the app
  may see go to its registered redirect URI; the others are an HTML page.
- ``POST /oauth2/token``: ``authorization_code`` (PKCE), ``refresh_token`` (rotation) and
  ``client_credentials`` (Backend Services); JSON answers with ``Cache-Control: no-store``,
  OAuth error JSON (RFC 6749 §5.2) otherwise.
- ``POST /oauth2/introspect`` (RFC 7662) and ``POST /oauth2/revoke`` (RFC 7009), for the
  client's own tokens.
- ``GET /oauth2/smart-style.json``: the ``smart_style_url`` of token responses.

Business API (authenticated): ``POST /api/smart/launches`` (an EHR launch for the patient on
screen) and ``/api/admin/smart/clients`` (the tenant's registry).

Failed client authentications and sign-ins count against per-IP throttles; every grant,
refusal, consent and denial is a security event in the audit trail; no code, token, secret or
assertion is ever logged.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Final
from urllib.parse import parse_qsl

import structlog
from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ehr.core.config import Settings
from ehr.core.db.models import SmartAuthorization, SmartClient, SmartLaunch, Tenant
from ehr.core.dependencies import AppResources, ResourcesDep, SessionDep
from ehr.core.error_handlers import problem_responses
from ehr.core.errors import AppError, NotFoundError
from ehr.core.intake import IntakeRoute
from ehr.fhir.dependencies import FhirClientDep
from ehr.platform.audit.recorder import record_security_event
from ehr.platform.auth.authorization import PublicRoute, RequirePermission
from ehr.platform.auth.delegation import is_resource_scope
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal
from ehr.platform.auth.service import check_credentials, check_second_factor, load_account
from ehr.platform.auth.signing_keys import current_signing_key
from ehr.platform.auth.throttling import ensure_ip_allowed, record_ip_failure
from ehr.platform.auth.tokens import encode_access_token
from ehr.platform.smart import app_tokens, authorizations, pages
from ehr.platform.smart.app_tokens import AppGrant
from ehr.platform.smart.authorizations import (
    CodeReplayedError,
    PageRefusalError,
    RedirectRefusalError,
)
from ehr.platform.smart.client_auth import authenticate_client
from ehr.platform.smart.clients import (
    APP_KINDS,
    BACKEND_SERVICE,
    disable_client,
    list_clients,
    register_app,
    register_backend_service,
)
from ehr.platform.smart.consent import (
    describe_scope,
    patient_label,
    search_patients,
)
from ehr.platform.smart.errors import OAuthError
from ehr.platform.smart.launches import mint_launch
from ehr.platform.smart.schemas import (
    LaunchCreated,
    LaunchRequest,
    OAuthErrorBody,
    SmartClientCreate,
    SmartClientView,
    TokenBody,
)

__all__ = ["TOKEN_PATH", "router", "token_endpoint_url"]

logger = structlog.get_logger(__name__)

TOKEN_PATH: Final = "/oauth2/token"  # noqa: S105 - a URL path, not a secret
_FORM: Final = "application/x-www-form-urlencoded"
_MAX_FORM_BYTES: Final = 32_768
_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Failed client authentications and sign-ins are counted per IP in their own windows.
_THROTTLE_BUCKET: Final = "smart-token"
_SIGN_IN_BUCKET: Final = "smart-sign-in"
_CSRF_COOKIE: Final = "smart_csrf_"
_GRANTS: Final = ("authorization_code", "refresh_token", "client_credentials")
# The pages' refusals are pages for the user (never a redirect to an unverified URI).
_PAGE_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    400: {"content": {"text/html": {}}, "description": "the request cannot continue (a page)"},
    401: {"content": {"text/html": {}}, "description": "sign-in refused (the page again)"},
    **problem_responses(422, 429),
}

# IntakeRoute like every router: these routes read their form bodies themselves.
router = APIRouter(tags=["smart"], route_class=IntakeRoute)

ClientAdmin = Annotated[Principal, RequirePermission(Permission.APIKEY_ADMIN)]
Launcher = Annotated[Principal, RequirePermission(Permission.PATIENT_READ)]


def token_endpoint_url(settings: Settings) -> str:
    """The token endpoint as clients address it (the ``aud`` of their assertions)."""
    return f"{settings.gateway.public_base_url.rstrip('/')}{TOKEN_PATH}"


def _ip(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


async def _form(request: Request, *, multi: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The urlencoded body; a repeated parameter is refused unless listed in ``multi``."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != _FORM:
        raise OAuthError("invalid_request", f"The request must be {_FORM}")
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        raise OAuthError("invalid_request", "The request is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError) as exc:
        raise OAuthError("invalid_request", "The request is not a valid form") from exc
    form: dict[str, Any] = {}
    for name, value in pairs:
        if name in multi:
            form.setdefault(name, []).append(value)
        elif name in form:
            raise OAuthError("invalid_request", f"The parameter {name!r} is repeated")
        else:
            form[name] = value
    return form


def _required(form: dict[str, Any], name: str) -> str:
    value = form.get(name, "")
    if not isinstance(value, str) or not value:
        raise OAuthError("invalid_request", f"The parameter {name!r} is missing")
    return value


def _oauth_error(refusal: OAuthError) -> JSONResponse:
    headers = dict(_NO_STORE)
    if refusal.status_code == 401:
        headers["WWW-Authenticate"] = 'Basic realm="oauth2"'
    return JSONResponse(
        OAuthErrorBody(error=refusal.error, error_description=refusal.description).model_dump(),
        status_code=refusal.status_code,
        headers=headers,
    )


async def _tenant_slug(resources: AppResources, tenant_id: uuid.UUID) -> str:
    async with resources.sessionmaker() as session:
        owner = await session.get(Tenant, tenant_id)
    return owner.slug if owner is not None else "_system"


# --- the token endpoint -------------------------------------------------------------------


async def _client_credentials(
    session: SessionDep, settings: Settings, client: SmartClient, form: dict[str, Any]
) -> dict[str, Any]:
    if client.kind != BACKEND_SERVICE:
        raise OAuthError("unauthorized_client", "client_credentials is for Backend Services")
    requested = _required(form, "scope").split()
    owner = await session.get(Tenant, client.tenant_id)
    if owner is None or owner.status != "active":
        raise OAuthError("invalid_client", "The client's tenant is not active", status_code=401)
    # A registered wildcard covers narrower requests (system/*.rs grants system/Patient.rs).
    registered = frozenset(client.scopes)
    granted = sorted({s for s in requested if authorizations.scope_covered(s, registered)})
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
    return TokenBody(
        access_token=issued.token, expires_in=issued.expires_in, scope=issued.scope
    ).model_dump(exclude_none=True)


async def _authorization_code(
    session: SessionDep, resources: AppResources, client: SmartClient, form: dict[str, Any]
) -> dict[str, Any]:
    if client.kind not in APP_KINDS:
        raise OAuthError("unauthorized_client", "Backend Services use client_credentials")
    settings = resources.settings
    try:
        record = await authorizations.redeem_code(
            session,
            code=_required(form, "code"),
            client=client,
            redirect_uri=_required(form, "redirect_uri"),
            verifier=_required(form, "code_verifier"),
        )
    except CodeReplayedError as replay:
        await app_tokens.revoke_family(
            session,
            resources.redis,
            settings,
            family_id=replay.family_id,
            user_id=replay.user_id,
            reason="smart_code_replay",
        )
        logger.warning("smart.code.replayed", client_id=client.client_id)
        raise
    account = await load_account(session, record.user_id) if record.user_id else None
    if account is None or not account.active or account.tenant.id != client.tenant_id:
        raise OAuthError("invalid_grant", "The user who authorized is no longer active")
    record.family_id = uuid.uuid4()
    grant = AppGrant(
        client=client,
        account=account,
        scopes=tuple(sorted(record.granted_scopes)),
        patient=record.patient,
        encounter=record.encounter,
        family_id=record.family_id,
        nonce=record.nonce,
        standalone=record.launch_hash is None,
    )
    return await app_tokens.issue_for_grant(session, settings, grant)


async def _refresh(
    session: SessionDep, resources: AppResources, client: SmartClient, form: dict[str, Any]
) -> dict[str, Any]:
    if client.kind not in APP_KINDS:
        raise OAuthError("unauthorized_client", "Backend Services get no refresh tokens")
    body, _ = await app_tokens.refresh_grant(
        session,
        resources.redis,
        resources.settings,
        client=client,
        refresh_token=_required(form, "refresh_token"),
        scope=form.get("scope") or None,
    )
    return body


@router.post(
    TOKEN_PATH,
    dependencies=[PublicRoute],
    response_model=TokenBody,
    responses={
        400: {"model": OAuthErrorBody, "description": "invalid_request, invalid_grant, …"},
        401: {"model": OAuthErrorBody, "description": "invalid_client"},
        **problem_responses(429),
    },
    summary="OAuth token endpoint: authorization_code (PKCE), refresh_token, client_credentials",
)
async def token(request: Request, session: SessionDep, resources: ResourcesDep) -> JSONResponse:
    """Exchange a code, a refresh token or (Backend Services) a client assertion for tokens."""
    settings = resources.settings
    ip = _ip(request)
    await ensure_ip_allowed(
        resources.redis,
        ip=ip,
        limit=settings.auth.login_attempts_per_ip_per_minute,
        bucket=_THROTTLE_BUCKET,
    )
    client: SmartClient | None = None
    grant_type = None
    try:
        form = await _form(request)
        grant_type = _required(form, "grant_type")
        if grant_type not in _GRANTS:
            raise OAuthError("unsupported_grant_type", f"Supported: {', '.join(_GRANTS)}")
        client = await authenticate_client(
            session,
            form,
            authorization=request.headers.get("authorization"),
            audience=token_endpoint_url(settings),
        )
        if grant_type == "client_credentials":
            body = await _client_credentials(session, settings, client, form)
        elif grant_type == "authorization_code":
            body = await _authorization_code(session, resources, client, form)
        else:
            body = await _refresh(session, resources, client, form)
    except OAuthError as refusal:
        if refusal.status_code == 401:
            await record_ip_failure(resources.redis, ip=ip, bucket=_THROTTLE_BUCKET)
        client_id = client.client_id if client is not None else None
        logger.info("smart.token.refused", error=refusal.error, client_id=client_id)
        await record_security_event(
            resources.sessionmaker,
            action="smart:token",
            outcome="denied",
            tenant=await _tenant_slug(resources, client.tenant_id) if client else "_system",
            actor_type="smart_client",
            actor_id=client_id,
            request=request,
            http_status=refusal.status_code,
            details={"error": refusal.error, "grant_type": grant_type},
        )
        return _oauth_error(refusal)
    logger.info("smart.token.issued", client_id=client.client_id, grant_type=grant_type)
    await record_security_event(
        resources.sessionmaker,
        action="smart:token",
        outcome="success",
        tenant=await _tenant_slug(resources, client.tenant_id),
        actor_type="smart_client",
        actor_id=client.client_id,
        request=request,
        http_status=200,
        patient_id=body.get("patient"),
        details={"grant_type": grant_type, "scope": body.get("scope")},
    )
    return JSONResponse(body, headers=_NO_STORE)


async def _authenticated_client(
    request: Request, session: SessionDep, resources: AppResources
) -> tuple[SmartClient, dict[str, Any]]:
    await ensure_ip_allowed(
        resources.redis,
        ip=_ip(request),
        limit=resources.settings.auth.login_attempts_per_ip_per_minute,
        bucket=_THROTTLE_BUCKET,
    )
    form = await _form(request)
    try:
        client = await authenticate_client(
            session,
            form,
            authorization=request.headers.get("authorization"),
            audience=token_endpoint_url(resources.settings),
        )
    except OAuthError as refusal:
        if refusal.status_code == 401:
            await record_ip_failure(resources.redis, ip=_ip(request), bucket=_THROTTLE_BUCKET)
        raise
    _required(form, "token")
    return client, form


@router.post(
    "/oauth2/introspect",
    dependencies=[PublicRoute],
    responses={
        400: {"model": OAuthErrorBody, "description": "invalid_request"},
        401: {"model": OAuthErrorBody, "description": "invalid_client"},
        **problem_responses(429),
    },
    summary="Token introspection (RFC 7662) of the calling client's own tokens",
)
async def introspect(
    request: Request, session: SessionDep, resources: ResourcesDep
) -> JSONResponse:
    """``{"active": true, …}`` for a live token issued to the caller, else ``{"active": false}``."""
    try:
        client, form = await _authenticated_client(request, session, resources)
        answer = await app_tokens.introspect(
            session, resources.redis, resources.settings, client=client, token=form["token"]
        )
    except OAuthError as refusal:
        return _oauth_error(refusal)
    return JSONResponse(answer, headers=_NO_STORE)


@router.post(
    "/oauth2/revoke",
    dependencies=[PublicRoute],
    responses={
        400: {"model": OAuthErrorBody, "description": "invalid_request"},
        401: {"model": OAuthErrorBody, "description": "invalid_client"},
        **problem_responses(429),
    },
    summary="Token revocation (RFC 7009) of the calling client's own tokens",
)
async def revoke(request: Request, session: SessionDep, resources: ResourcesDep) -> Response:
    """Revoke a refresh token (and its grant) or an access token; 200 even if unknown."""
    try:
        client, form = await _authenticated_client(request, session, resources)
        await app_tokens.revoke(
            session, resources.redis, resources.settings, client=client, token=form["token"]
        )
    except OAuthError as refusal:
        return _oauth_error(refusal)
    await record_security_event(
        resources.sessionmaker,
        action="smart:revoke",
        outcome="success",
        tenant=await _tenant_slug(resources, client.tenant_id),
        actor_type="smart_client",
        actor_id=client.client_id,
        request=request,
        http_status=200,
    )
    return Response(status_code=200, headers=_NO_STORE)


@router.get(
    "/oauth2/smart-style.json",
    dependencies=[PublicRoute],
    responses=problem_responses(400),
    summary="The SMART style (smart_style_url) apps may use to look like the EHR",
)
async def smart_style() -> dict[str, Any]:
    """Colours and shapes of the EHR (SMART App Launch: styling)."""
    return {
        "color_background": "#ffffff",
        "color_error": "#a00000",
        "color_highlight": "#0b5cad",
        "color_modal_backdrop": "",
        "color_success": "#1e7e34",
        "color_text": "#1a1a1a",
        "dim_border_radius": "4px",
        "dim_font_size": "16px",
        "dim_spacing_size": "16px",
        "font_family_body": "system-ui, sans-serif",
        "font_family_heading": "system-ui, sans-serif",
    }


# --- the authorization endpoint and its pages -------------------------------------------------


def _cookie_name(request_id: uuid.UUID | str) -> str:
    return f"{_CSRF_COOKIE}{uuid.UUID(str(request_id)).hex}"


async def _audit_authorize(
    resources: AppResources,
    request: Request,
    record: SmartAuthorization | None,
    *,
    outcome: str,
    details: dict[str, Any],
    client: SmartClient | None = None,
) -> None:
    tenant_id = record.tenant_id if record is not None else (client.tenant_id if client else None)
    await record_security_event(
        resources.sessionmaker,
        action="smart:authorize",
        outcome="success" if outcome == "success" else "denied",
        tenant=await _tenant_slug(resources, tenant_id) if tenant_id else "_system",
        actor_type="user" if record is not None and record.user_id else "system",
        actor_id=str(record.user_id) if record is not None and record.user_id else None,
        request=request,
        patient_id=record.patient if record is not None else None,
        details=details,
    )


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=status.HTTP_303_SEE_OTHER, headers=_NO_STORE)


@router.get(
    "/oauth2/authorize",
    dependencies=[PublicRoute],
    response_class=HTMLResponse,
    responses={
        303: {"description": "an OAuth error sent to the registered redirect URI"},
        **_PAGE_ERRORS,
    },
    summary="SMART App Launch authorization endpoint (authorization code + PKCE S256)",
)
async def authorize(request: Request, session: SessionDep, resources: ResourcesDep) -> Response:
    """Check the request, then ask the user to sign in."""
    params = dict(request.query_params)
    try:
        opened = await authorizations.open_request(session, resources.settings, params)
    except PageRefusalError as refusal:
        await _audit_authorize(
            resources, request, None, outcome="denied", details={"error": "invalid_client"}
        )
        return pages.error_page(refusal.description)
    except RedirectRefusalError as refusal:
        await _audit_authorize(
            resources, request, None, outcome="denied", details={"error": refusal.error}
        )
        return _redirect(refusal.location())
    page = pages.login_page(
        app_name=opened.app_name, request_id=str(opened.request_id), csrf=opened.csrf
    )
    page.set_cookie(
        _cookie_name(opened.request_id),
        opened.csrf,
        max_age=resources.settings.smart.authorization_ttl_seconds,
        path="/oauth2/authorize",
        secure=resources.settings.gateway.public_base_url.startswith("https://"),
        httponly=True,
        samesite="strict",
    )
    return page


async def _checked_request(
    request: Request, session: SessionDep, form: dict[str, Any], *, status_: str
) -> tuple[SmartAuthorization, SmartClient]:
    request_id = form.get("request", "")
    record, client = await authorizations.load_request(session, str(request_id), status=status_)
    cookie = request.cookies.get(_cookie_name(record.id))
    if not authorizations.csrf_matches(record, cookie, form.get("csrf")):
        raise PageRefusalError("The form was not sent by this sign-in page (CSRF check failed).")
    return record, client


async def _page_form(request: Request, *, multi: frozenset[str] = frozenset()) -> dict[str, Any]:
    try:
        return await _form(request, multi=multi)
    except OAuthError as exc:
        raise PageRefusalError(exc.description) from exc


async def _consent(
    resources: AppResources,
    fhir: FhirClientDep,
    session: SessionDep,
    record: SmartAuthorization,
    client: SmartClient,
    csrf: str,
    *,
    query: str = "",
    error: str | None = None,
) -> HTMLResponse:
    account = await load_account(session, record.user_id) if record.user_id else None
    if account is None:
        raise PageRefusalError("The account is not active.")
    offered, unavailable = authorizations.offered_scopes(record, account.roles)
    launch = await session.get(SmartLaunch, record.launch_hash) if record.launch_hash else None
    tenant = fhir.for_tenant(account.tenant.slug)
    label = None
    picker = False
    patients: list[pages.PatientChoice] = []
    if launch is not None:
        label = await patient_label(tenant, launch.patient)
    elif account.user.patient_id is not None:
        label = await patient_label(tenant, account.user.patient_id)
    elif "launch/patient" in record.requested_scopes:
        picker = True
        if query:
            patients = await search_patients(tenant, query)
            await record_security_event(
                resources.sessionmaker,
                action="smart:patient-picker",
                outcome="success",
                tenant=account.tenant.slug,
                actor_type="user",
                actor_id=str(account.user.id),
                resource_type="Patient",
                details={"matches": len(patients)},
            )
    return pages.consent_page(
        app_name=client.name,
        request_id=str(record.id),
        csrf=csrf,
        scopes=[pages.ScopeChoice(s, describe_scope(s)) for s in offered],
        unavailable=unavailable,
        patient_label=label,
        picker=picker,
        query=query,
        patients=patients,
        error=error,
    )


@router.post(
    "/oauth2/authorize/login",
    dependencies=[PublicRoute],
    response_class=HTMLResponse,
    responses=_PAGE_ERRORS,
    summary="The authorization page's sign-in form (password)",
)
async def authorize_login(
    request: Request, session: SessionDep, resources: ResourcesDep, fhir: FhirClientDep
) -> Response:
    """Check the password; then the second factor, or the consent page."""
    settings = resources.settings
    await ensure_ip_allowed(
        resources.redis,
        ip=_ip(request),
        limit=settings.auth.login_attempts_per_ip_per_minute,
        bucket=_SIGN_IN_BUCKET,
    )
    try:
        form = await _page_form(request)
        record, client = await _checked_request(request, session, form, status_="pending")
        owner = await session.get(Tenant, record.tenant_id)
        try:
            checked = await check_credentials(
                session,
                settings,
                tenant=owner.slug if owner is not None else "",
                username=str(form.get("username", "")),
                password=str(form.get("password", "")),
            )
        except AppError:
            await record_ip_failure(resources.redis, ip=_ip(request), bucket=_SIGN_IN_BUCKET)
            await _audit_authorize(
                resources, request, record, outcome="denied", details={"error": "sign_in"}
            )
            return pages.login_page(
                app_name=client.name,
                request_id=str(record.id),
                csrf=str(form["csrf"]),
                error="Invalid username or password.",
                status_code=401,
            )
        if checked.account is None:
            return pages.mfa_page(
                app_name=client.name,
                request_id=str(record.id),
                csrf=str(form["csrf"]),
                mfa_token=str(checked.mfa_token),
            )
        await authorizations.authenticated(session, record, user_id=checked.account.user.id)
        return await _consent(resources, fhir, session, record, client, str(form["csrf"]))
    except PageRefusalError as refusal:
        return pages.error_page(refusal.description)
    except RedirectRefusalError as refusal:
        await _audit_authorize(
            resources, request, None, outcome="denied", details={"error": refusal.error}
        )
        return _redirect(refusal.location())


@router.post(
    "/oauth2/authorize/mfa",
    dependencies=[PublicRoute],
    response_class=HTMLResponse,
    responses=_PAGE_ERRORS,
    summary="The authorization page's second factor (TOTP or recovery code)",
)
async def authorize_mfa(
    request: Request, session: SessionDep, resources: ResourcesDep, fhir: FhirClientDep
) -> Response:
    """Check the second factor; then the consent page."""
    try:
        form = await _page_form(request)
        record, client = await _checked_request(request, session, form, status_="pending")
        try:
            account = await check_second_factor(
                session,
                resources.settings,
                mfa_token=str(form.get("mfa_token", "")),
                code=form.get("code") or None,
                recovery_code=form.get("recovery_code") or None,
            )
        except AppError:
            await _audit_authorize(
                resources, request, record, outcome="denied", details={"error": "second_factor"}
            )
            # The challenge is spent: signing in again starts from the password.
            return pages.login_page(
                app_name=client.name,
                request_id=str(record.id),
                csrf=str(form["csrf"]),
                error="The code was not accepted: sign in again.",
                status_code=401,
            )
        await authorizations.authenticated(session, record, user_id=account.user.id)
        return await _consent(resources, fhir, session, record, client, str(form["csrf"]))
    except PageRefusalError as refusal:
        return pages.error_page(refusal.description)
    except RedirectRefusalError as refusal:
        return _redirect(refusal.location())


@router.get(
    "/oauth2/authorize/consent",
    dependencies=[PublicRoute],
    response_class=HTMLResponse,
    responses=_PAGE_ERRORS,
    summary="The consent page again, with the patient picker's search",
)
async def consent_search(
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    fhir: FhirClientDep,
    request_id: Annotated[str, Query(alias="request", max_length=64)],
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """Search the patient a standalone launch is for (signed-in user, this browser only)."""
    try:
        record, client = await authorizations.load_request(
            session, request_id, status="authenticated"
        )
        cookie = request.cookies.get(_cookie_name(record.id))
        if not authorizations.csrf_matches(record, cookie, cookie):
            raise PageRefusalError("This page belongs to another browser's sign-in.")
        return await _consent(
            resources, fhir, session, record, client, str(cookie), query=q.strip()
        )
    except PageRefusalError as refusal:
        return pages.error_page(refusal.description)


@router.post(
    "/oauth2/authorize/consent",
    dependencies=[PublicRoute],
    response_class=HTMLResponse,
    responses={
        303: {"description": "the code (or access_denied) sent to the redirect URI"},
        **_PAGE_ERRORS,
    },
    summary="The consent decision: allow (with the scopes left ticked) or deny",
)
async def consent_decision(
    request: Request, session: SessionDep, resources: ResourcesDep, fhir: FhirClientDep
) -> Response:
    """Issue the code to the app's redirect URI, or tell it the user denied."""
    try:
        form = await _page_form(request, multi=frozenset({"scope"}))
        record, client = await _checked_request(request, session, form, status_="authenticated")
        csrf = str(form["csrf"])
        if form.get("decision") != "allow":
            record.status = "ended"
            await _audit_authorize(
                resources, request, record, outcome="denied", details={"error": "access_denied"}
            )
            raise RedirectRefusalError(
                "access_denied",
                "The user denied the request",
                redirect_uri=record.redirect_uri,
                state=record.state,
            )
        account = await load_account(session, record.user_id) if record.user_id else None
        if account is None or not account.active:
            raise PageRefusalError("The account is not active.")
        offered, _ = authorizations.offered_scopes(record, account.roles)
        chosen = [s for s in form.get("scope", []) if s in offered]
        if not any(is_resource_scope(s) for s in chosen):
            return await _consent(
                resources,
                fhir,
                session,
                record,
                client,
                csrf,
                error="Leave at least one kind of record ticked, or deny.",
            )
        tenant = fhir.for_tenant(account.tenant.slug)
        launch = await session.get(SmartLaunch, record.launch_hash) if record.launch_hash else None
        patient: str | None = None
        encounter: str | None = None
        if launch is not None:
            patient, encounter = launch.patient, launch.encounter
        elif account.user.patient_id is not None:
            patient = account.user.patient_id
        elif "launch/patient" in record.requested_scopes:
            picked = str(form.get("patient", ""))
            if not picked or await patient_label(tenant, picked, strict=True) is None:
                return await _consent(
                    resources,
                    fhir,
                    session,
                    record,
                    client,
                    csrf,
                    error="Choose the patient this app is for.",
                )
            patient = picked
        code = await authorizations.issue_code(
            session,
            resources.settings,
            record,
            scopes=chosen,
            patient=patient,
            encounter=encounter,
        )
        await _audit_authorize(
            resources,
            request,
            record,
            outcome="success",
            details={"client_id": client.client_id, "scope": " ".join(chosen)},
        )
        return _redirect(
            authorizations.redirect_with(
                record.redirect_uri,
                {"code": code, **({"state": record.state} if record.state else {})},
            )
        )
    except PageRefusalError as refusal:
        return pages.error_page(refusal.description)
    except RedirectRefusalError as refusal:
        return _redirect(refusal.location())


# --- business API: launches and the registry ------------------------------------------------


@router.post(
    "/api/smart/launches",
    response_model=LaunchCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 422),
    summary="Mint an EHR launch of a SMART app for the patient (and encounter) on screen",
)
async def create_launch(
    body: LaunchRequest,
    principal: Launcher,
    session: SessionDep,
    resources: ResourcesDep,
    fhir: FhirClientDep,
    request: Request,
) -> LaunchCreated:
    """The ``launch`` and ``iss`` to open the app with (and its launch URL when registered)."""
    tenant = fhir.for_tenant(principal.tenant)
    if principal.patient_id is not None and body.patient != principal.patient_id:
        raise NotFoundError(f"No patient {body.patient!r}")
    if await patient_label(tenant, body.patient, strict=True) is None:
        raise NotFoundError(f"No patient {body.patient!r}")
    minted = await mint_launch(
        session,
        resources.settings,
        tenant_id=principal.tenant_id,
        user_id=principal.subject,
        client_id=body.client_id,
        patient=body.patient,
        encounter=body.encounter,
    )
    await record_security_event(
        resources.sessionmaker,
        action="smart:launch",
        outcome="success",
        tenant=principal.tenant,
        actor_type="user",
        actor_id=str(principal.subject),
        request=request,
        resource_type="Patient",
        resource_id=body.patient,
        patient_id=body.patient,
        details={"client_id": body.client_id},
    )
    return LaunchCreated(
        launch=minted.launch,
        iss=minted.iss,
        expires_in=minted.expires_in,
        launch_url=minted.launch_url,
    )


def _client_view(client: Any) -> SmartClientView:
    return SmartClientView.model_validate(client, from_attributes=True)


@router.get(
    "/api/admin/smart/clients",
    response_model=list[SmartClientView],
    responses=problem_responses(401, 403),
    tags=["admin"],
    summary="The tenant's SMART clients (apps and Backend Services)",
)
async def admin_list_clients(principal: ClientAdmin, session: SessionDep) -> list[SmartClientView]:
    """Every SMART client of the caller's tenant (never a secret)."""
    return [_client_view(c) for c in await list_clients(session, tenant=principal.tenant)]


@router.post(
    "/api/admin/smart/clients",
    response_model=SmartClientView,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 422),
    tags=["admin"],
    summary="Register a SMART app or Backend Services client",
)
async def admin_create_client(
    body: SmartClientCreate,
    principal: ClientAdmin,
    session: SessionDep,
    request: Request,
    resources: ResourcesDep,
) -> SmartClientView:
    """Register a client; a confidential app without keys gets its secret in this answer only."""
    created_by = principal.username or str(principal.subject)
    if body.kind == BACKEND_SERVICE:
        registered = await register_backend_service(
            session,
            tenant=principal.tenant,
            name=body.name,
            jwks=body.jwks,
            scopes=body.scopes,
            created_by=created_by,
        )
    else:
        registered = await register_app(
            session,
            tenant=principal.tenant,
            name=body.name,
            confidential=body.kind == "confidential_app",
            redirect_uris=body.redirect_uris,
            scopes=body.scopes,
            launch_types=body.launch_types,
            launch_uri=body.launch_uri,
            jwks=body.jwks,
            created_by=created_by,
        )
    await record_security_event(
        resources.sessionmaker,
        action="smart:client-registered",
        outcome="success",
        tenant=principal.tenant,
        actor_type=principal.kind,
        actor_id=str(principal.subject),
        request=request,
        details={"client_id": registered.client_id, "kind": registered.kind},
    )
    return _client_view(registered)


@router.post(
    "/api/admin/smart/clients/{client_id}/disable",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404),
    tags=["admin"],
    summary="Disable a SMART client: its tokens stop working at once",
)
async def admin_disable_client(
    client_id: Annotated[str, Path(max_length=64)],
    principal: ClientAdmin,
    session: SessionDep,
    request: Request,
    resources: ResourcesDep,
) -> Response:
    """Disable the client (its assertions, codes, refresh and access tokens stop working)."""
    await disable_client(session, tenant=principal.tenant, client_id=client_id)
    await record_security_event(
        resources.sessionmaker,
        action="smart:client-disabled",
        outcome="success",
        tenant=principal.tenant,
        actor_type=principal.kind,
        actor_id=str(principal.subject),
        request=request,
        details={"client_id": client_id},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
