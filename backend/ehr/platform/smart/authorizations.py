"""The App Launch authorization request, from ``GET /oauth2/authorize`` to the code's redemption.

1. :func:`open_request` checks the request (RFC 6749 §4.1.1 + SMART): a known, enabled app and a
   redirect URI it registered, exactly — otherwise :class:`PageRefusalError` (shown to the user,
   never sent to an unverified URI). Then ``response_type=code``, ``state``, ``aud`` = our FHIR
   base, PKCE ``S256`` (``plain`` refused), scopes the app registered, and for an EHR launch a
   ``launch`` minted for this app — otherwise :class:`RedirectRefusalError` (an OAuth error sent
   back to the redirect URI with the ``state``). A row in ``smart_authorizations`` holds it,
   bound to the browser by a CSRF token (cookie + form field; only its hash is stored).
2. The user signs in (password, then TOTP if enrolled) — :func:`authenticated`.
3. The consent — :func:`issue_code` — records the scopes the user left ticked (narrowed to what
   the user may delegate), the patient (EHR launch: the launch's; standalone: picked; portal
   user: their own) and issues a code: 256 random bits, only its SHA-256 stored, single use,
   ``smart.code_ttl_seconds``.
4. :func:`redeem_code` (the token endpoint) spends it once (an UPDATE that only one caller wins);
   the same code again revokes what the first redemption issued (RFC 6749 §4.1.2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings
from ehr.core.db.models import SmartAuthorization, SmartClient, SmartLaunch, Tenant
from ehr.platform.auth.delegation import delegable_scopes, is_resource_scope
from ehr.platform.auth.scope_grammar import parse_scope
from ehr.platform.smart.clients import APP_KINDS, find_client
from ehr.platform.smart.errors import OAuthError

__all__ = [
    "CodeReplayedError",
    "OpenedRequest",
    "PageRefusalError",
    "RedirectRefusalError",
    "allowed_by_client",
    "authenticated",
    "csrf_matches",
    "issue_code",
    "load_request",
    "offered_scopes",
    "open_request",
    "pkce_matches",
    "redeem_code",
    "redirect_with",
    "scope_covered",
    "token_hash",
]

_PKCE_VERIFIER: Final = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_PKCE_CHALLENGE: Final = re.compile(r"[A-Za-z0-9\-_]{43}")
_MAX_STATE: Final = 2000
_MAX_NONCE: Final = 512
_MAX_SCOPES: Final = 100


class PageRefusalError(Exception):
    """A request the user is told about on our page (the app's redirect URI is not trusted)."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class RedirectRefusalError(Exception):
    """An OAuth error for the app, sent to its registered redirect URI with the ``state``."""

    def __init__(self, error: str, description: str, *, redirect_uri: str, state: str | None):
        super().__init__(description)
        self.error = error
        self.description = description
        self.redirect_uri = redirect_uri
        self.state = state

    def location(self) -> str:
        params = {"error": self.error, "error_description": self.description}
        if self.state is not None:
            params["state"] = self.state
        return redirect_with(self.redirect_uri, params)


@dataclass(frozen=True, slots=True)
class OpenedRequest:
    request_id: uuid.UUID
    csrf: str
    app_name: str


def token_hash(value: str) -> str:
    """The SHA-256 (hex) under which a code, launch or refresh token is stored."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def csrf_matches(record: SmartAuthorization, cookie: str | None, field: str | None) -> bool:
    """The form's CSRF token equals the browser's cookie and the one issued for the request."""
    if not cookie or not field or not hmac.compare_digest(cookie, field):
        return False
    return hmac.compare_digest(record.csrf_hash, token_hash(field))


def redirect_with(uri: str, params: Mapping[str, str]) -> str:
    """``uri`` with ``params`` added to its query (its own query kept)."""
    parts = urlsplit(uri)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def scope_covered(scope: str, registered: frozenset[str]) -> bool:
    """A requested scope the app registered: itself, or a resource scope inside a registered
    one (registered ``patient/*.rs`` covers ``patient/Observation.rs`` and ``.read``)."""
    if scope in registered:
        return True
    if not is_resource_scope(scope):
        return False
    wanted = parse_scope(scope)
    if wanted is None:
        return False
    for text in registered:
        held = parse_scope(text)
        if (
            held is not None
            and held.context == wanted.context
            and held.resource_type in ("*", wanted.resource_type)
            and wanted.actions <= held.actions
        ):
            return True
    return False


def allowed_by_client(requested: Sequence[str], client: SmartClient) -> list[str]:
    """The requested scopes the client did not register (empty: all allowed)."""
    registered = frozenset(client.scopes)
    return [s for s in requested if not scope_covered(s, registered)]


def _fhir_bases(settings: Settings, tenant: str) -> frozenset[str]:
    public = f"{settings.gateway.public_base_url.rstrip('/')}/fhir"
    return frozenset({public, f"{public}/{tenant}"})


async def open_request(
    session: AsyncSession, settings: Settings, params: Mapping[str, str]
) -> OpenedRequest:
    """Check an authorization request and store it (see the module doc)."""
    client = await find_client(session, params.get("client_id", ""))
    if client is None or client.kind not in APP_KINDS or client.disabled_at is not None:
        raise PageRefusalError("The application is not registered here, or it has been disabled.")
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in client.redirect_uris:
        raise PageRefusalError("The application's redirect address is not one it registered.")
    state = params.get("state") or None

    def refuse(error: str, description: str) -> RedirectRefusalError:
        return RedirectRefusalError(error, description, redirect_uri=redirect_uri, state=state)

    if params.get("response_type") != "code":
        raise refuse("unsupported_response_type", "Only response_type=code is supported")
    if state is None or len(state) > _MAX_STATE:
        raise refuse("invalid_request", "state is required (at most 2000 characters)")
    owner = await session.get(Tenant, client.tenant_id)
    if owner is None or owner.status != "active":
        raise PageRefusalError("The application's organisation is not active.")
    if params.get("aud", "").rstrip("/") not in _fhir_bases(settings, owner.slug):
        raise refuse("invalid_request", "aud must be this server's FHIR base URL")
    if params.get("code_challenge_method") != "S256":
        raise refuse("invalid_request", "PKCE is required with code_challenge_method=S256")
    challenge = params.get("code_challenge", "")
    if not _PKCE_CHALLENGE.fullmatch(challenge):
        raise refuse("invalid_request", "code_challenge must be a base64url SHA-256 (43 chars)")
    nonce = params.get("nonce") or None
    if nonce is not None and len(nonce) > _MAX_NONCE:
        raise refuse("invalid_request", "nonce is too long")
    requested = list(dict.fromkeys(params.get("scope", "").split()))
    if not requested or len(requested) > _MAX_SCOPES:
        raise refuse("invalid_scope", "scope is required")
    beyond = allowed_by_client(requested, client)
    if beyond:
        raise refuse("invalid_scope", f"Not registered for this app: {' '.join(beyond)}")
    launch = params.get("launch") or None
    launch_hash: str | None = None
    if launch is not None:
        if "ehr" not in client.launch_types:
            raise refuse("invalid_request", "This app is not registered for EHR launch")
        launch_hash = token_hash(launch)
        found = await session.get(SmartLaunch, launch_hash)
        if (
            found is None
            or found.client_id != client.id
            or found.used_at is not None
            or found.expires_at <= datetime.now(UTC)
        ):
            raise refuse("invalid_request", "The launch is unknown, used or expired")
    else:
        if "launch" in requested:
            raise refuse("invalid_request", "The launch scope needs a launch parameter")
        if "standalone" not in client.launch_types:
            raise refuse("invalid_request", "This app is registered for EHR launch only")
    csrf = secrets.token_urlsafe(32)
    record = SmartAuthorization(
        tenant_id=client.tenant_id,
        client_id=client.id,
        status="pending",
        csrf_hash=token_hash(csrf),
        redirect_uri=redirect_uri,
        state=state,
        nonce=nonce,
        code_challenge=challenge,
        requested_scopes=requested,
        granted_scopes=[],
        launch_hash=launch_hash,
        expires_at=datetime.now(UTC) + timedelta(seconds=settings.smart.authorization_ttl_seconds),
    )
    session.add(record)
    await session.flush()
    return OpenedRequest(request_id=record.id, csrf=csrf, app_name=client.name)


async def load_request(
    session: AsyncSession, request_id: str, *, status: str
) -> tuple[SmartAuthorization, SmartClient]:
    """The stored request in ``status``, unexpired, of an enabled app (else
    :class:`PageRefusalError`)."""
    try:
        key = uuid.UUID(request_id)
    except ValueError as exc:
        raise PageRefusalError("This sign-in request is unknown.") from exc
    record = await session.get(SmartAuthorization, key, with_for_update=True)
    if record is None or record.status != status or record.expires_at <= datetime.now(UTC):
        raise PageRefusalError("This sign-in request has expired or was already used.")
    client = await session.get(SmartClient, record.client_id)
    if client is None or client.disabled_at is not None:
        raise PageRefusalError("The application has been disabled.")
    return record, client


async def authenticated(
    session: AsyncSession, record: SmartAuthorization, *, user_id: uuid.UUID
) -> SmartLaunch | None:
    """The user signed in: bind the request to them. An EHR launch must be theirs."""
    launch = None
    if record.launch_hash is not None:
        launch = await session.get(SmartLaunch, record.launch_hash)
        if launch is None or launch.user_id != user_id:
            raise RedirectRefusalError(
                "access_denied",
                "The launch was started by another user",
                redirect_uri=record.redirect_uri,
                state=record.state,
            )
    record.user_id = user_id
    record.status = "authenticated"
    return launch


def offered_scopes(
    record: SmartAuthorization, roles: frozenset[str]
) -> tuple[list[str], list[str]]:
    """What the consent page offers (the request narrowed to what the user may delegate) and
    what it cannot (requested, but beyond the user's own access)."""
    offered = delegable_scopes(record.requested_scopes, roles)
    ordered = sorted(offered, key=lambda s: (is_resource_scope(s), s))
    unavailable = [s for s in record.requested_scopes if is_resource_scope(s) and s not in offered]
    # A wildcard request offered as the user's types is not "unavailable".
    unavailable = [s for s in unavailable if ".*" not in s and "/*" not in s]
    return ordered, unavailable


async def issue_code(
    session: AsyncSession,
    settings: Settings,
    record: SmartAuthorization,
    *,
    scopes: Sequence[str],
    patient: str | None,
    encounter: str | None,
) -> str:
    """Record the consent and issue the code (returned once; only its hash is stored)."""
    code = secrets.token_urlsafe(32)
    record.granted_scopes = list(dict.fromkeys(scopes))
    record.patient = patient
    record.encounter = encounter
    record.code_hash = token_hash(code)
    record.status = "code"
    record.expires_at = datetime.now(UTC) + timedelta(seconds=settings.smart.code_ttl_seconds)
    if record.launch_hash is not None:
        await session.execute(
            update(SmartLaunch)
            .where(SmartLaunch.token_hash == record.launch_hash)
            .values(used_at=datetime.now(UTC))
        )
    return code


def pkce_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 S256: ``BASE64URL(SHA256(verifier))`` equals the challenge."""
    if not _PKCE_VERIFIER.fullmatch(verifier):
        return False
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return hmac.compare_digest(expected, challenge)


async def redeem_code(
    session: AsyncSession,
    *,
    code: str,
    client: SmartClient,
    redirect_uri: str,
    verifier: str,
) -> SmartAuthorization:
    """Spend ``code`` for ``client``; any mismatch is ``invalid_grant`` and spends it too."""
    digest = token_hash(code)
    now = datetime.now(UTC)
    won: SmartAuthorization | None = await session.scalar(
        update(SmartAuthorization)
        .where(SmartAuthorization.code_hash == digest, SmartAuthorization.status == "code")
        .values(status="redeemed")
        .returning(SmartAuthorization)
    )
    if won is None:
        used = await session.scalar(
            select(SmartAuthorization).where(SmartAuthorization.code_hash == digest)
        )
        if used is not None and used.status == "redeemed" and used.family_id is not None:
            raise CodeReplayedError(used.family_id, used.user_id)
        raise OAuthError("invalid_grant", "The code is unknown, used or expired")
    if won.expires_at <= now:
        raise OAuthError("invalid_grant", "The code has expired")
    if won.client_id != client.id:
        raise OAuthError("invalid_grant", "The code was issued to another client")
    if redirect_uri != won.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request's")
    if not pkce_matches(verifier, won.code_challenge):
        raise OAuthError("invalid_grant", "The code_verifier does not match the code_challenge")
    return won


class CodeReplayedError(OAuthError):
    """A code presented again: what its first redemption issued is to be revoked."""

    def __init__(self, family_id: uuid.UUID, user_id: uuid.UUID | None) -> None:
        super().__init__("invalid_grant", "The code has already been used")
        self.family_id = family_id
        self.user_id = user_id
