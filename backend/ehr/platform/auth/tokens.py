"""Access tokens (and MFA login challenges): ES256 JWTs with a ``kid``, verified strictly.

Access token claims::

    header  {"alg": "ES256", "typ": "JWT", "kid": "<signing key id>"}
    iss     settings.auth.issuer            aud    settings.auth.audience
    sub     user id (uuid)                  tid    tenant id (uuid)
    tenant  tenant slug (HAPI partition)    roles  ["physician", ...]
    scope   SMART-style scopes, space-separated (ehr.platform.auth.permissions.scopes_for)
    jti     token id (deny-list key)        sid    refresh family id (logout revokes it)
    iat/exp issue and expiry (seconds)      token_use "access"

An MFA challenge (step two of a login) is a separate, short-lived JWT with audience
``<audience>:mfa`` and ``token_use`` "mfa": neither kind is accepted in place of the other.

Verification refuses: anything but three base64url segments; any ``alg`` but ES256 (``none``,
HS256 with the public key as an HMAC secret, RS256, ...); a ``kid`` that is not one of our
current signing keys; a bad signature; a wrong issuer or audience; an expired ``exp``; a missing
or mistyped claim. Every refusal is :class:`~ehr.core.errors.AuthenticationRequired` (401); the
reason goes to the log only as a code, never the token.

Verified-token cache (:func:`verify_access_token_cached`, what authentication uses): the ES256
verification (~230 µs) is done once per token and process. The claims are kept, by the token's
SHA-256 (the token itself is not kept), at most :data:`VERIFIED_TOKENS_MAX` per issuer/audience
(least recently used first out), and each use checks again what can change after verification:
the ``exp`` (same rule as the decode: leeway 0) and that the ``kid`` is still one of the current
verification keys (:func:`~ehr.platform.auth.signing_keys.kid_is_current`: a key expired or
deleted stops verifying within the key cache time, cached token or not). Revocation and the
account are not part of it: they are checked on every request.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import structlog
from jose import ExpiredSignatureError, JWTError, jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings
from ehr.core.db.models import RoleGrant, Tenant, User
from ehr.core.errors import AuthenticationRequired
from ehr.platform.auth.permissions import scopes_for
from ehr.platform.auth.signing_keys import (
    ALGORITHM,
    ActiveSigningKey,
    cached_verification_keys,
    current_signing_key,
    kid_is_current,
)
from ehr.platform.auth.signing_keys import verification_keys as load_verification_keys

__all__ = [
    "MAX_TOKEN_LENGTH",
    "MFA_CHALLENGE_TTL_SECONDS",
    "VERIFIED_TOKENS_MAX",
    "AccessClaims",
    "BearerChallenge",
    "IssuedAccessToken",
    "MfaChallenge",
    "SessionSource",
    "decode_access_token",
    "decode_mfa_challenge",
    "encode_access_token",
    "encode_mfa_challenge",
    "forget_verified_tokens",
    "issue_access_token_for",
    "verify_access_token",
    "verify_access_token_cached",
    "verify_mfa_challenge",
]

logger = structlog.get_logger(__name__)

MAX_TOKEN_LENGTH: Final = 8192
MFA_CHALLENGE_TTL_SECONDS: Final = 300
_ACCESS_USE: Final = "access"
_MFA_USE: Final = "mfa"
VERIFIED_TOKENS_MAX: Final = 10_000
_INVALID: Final = "The access token is invalid"
_EXPIRED: Final = "The access token has expired"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """The verified content of an access token."""

    subject: uuid.UUID
    tenant_id: uuid.UUID
    tenant: str
    roles: frozenset[str]
    scopes: frozenset[str]
    jti: str
    issued_at: datetime
    expires_at: datetime
    session_id: uuid.UUID | None
    kid: str
    # A SMART client's token: the registered client's client_id. Backend Services: the subject
    # is the client's id. A SMART app's (``delegated``): the subject is the user who authorized
    # it, with the launch context (``patient``, ``encounter``) the user chose.
    client_id: str | None = None
    delegated: bool = False
    patient: str | None = None
    encounter: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    token: str = field(repr=False)  # never printed
    jti: str
    expires_at: datetime
    expires_in: int
    scope: str


@dataclass(frozen=True, slots=True)
class MfaChallenge:
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    jti: str
    expires_at: datetime


class BearerChallenge(AuthenticationRequired):
    """401 for a missing, invalid, expired or revoked credential, with an RFC 6750 challenge
    (``WWW-Authenticate: Bearer realm="ehr", error="invalid_token"``)."""

    def __init__(self, detail: str | None = None, *, error: str | None = "invalid_token") -> None:
        challenge = 'Bearer realm="ehr"'
        if error is not None:
            challenge += f', error="{error}"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


def _refuse(reason: str, detail: str = _INVALID) -> AuthenticationRequired:
    logger.info("auth.token.refused", reason=reason)
    return BearerChallenge(detail)


def _unverified_kid(token: str) -> str:
    """The header's kid after the cheap structural checks (alg must be exactly ES256)."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise _refuse("malformed")
    if token.count(".") != 2:
        raise _refuse("malformed")
    try:
        header = jwt.get_unverified_header(token)
    except JWTError:
        raise _refuse("malformed") from None
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
        raise _refuse("algorithm")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 64:
        raise _refuse("kid_missing")
    return kid


def _decode(
    token: str,
    keys: Mapping[str, Mapping[str, Any]],
    *,
    issuer: str,
    audience: str,
    token_use: str,
    expired_detail: str = _EXPIRED,
    kid: str | None = None,
) -> tuple[str, dict[str, Any]]:
    if kid is None:
        kid = _unverified_kid(token)
    key = keys.get(kid)
    if key is None:
        raise _refuse("kid_unknown")
    try:
        claims = jwt.decode(
            token,
            dict(key),
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            options={
                "require_iat": True,
                "require_exp": True,
                "require_iss": True,
                "require_aud": True,
                "require_sub": True,
                "require_jti": True,
                "leeway": 0,
            },
        )
    except ExpiredSignatureError:
        raise _refuse("expired", expired_detail) from None
    except JWTError:
        raise _refuse("signature_or_claims") from None
    if not isinstance(claims, dict) or claims.get("token_use") != token_use:
        raise _refuse("token_use")
    return kid, claims


def _uuid_claim(claims: Mapping[str, Any], name: str) -> uuid.UUID:
    value = claims.get(name)
    if not isinstance(value, str):
        raise _refuse(f"claim_{name}")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise _refuse(f"claim_{name}") from None


def _int_claim(claims: Mapping[str, Any], name: str) -> int:
    value = claims.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _refuse(f"claim_{name}")
    return value


def _str_claim(claims: Mapping[str, Any], name: str, max_length: int = 64) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise _refuse(f"claim_{name}")
    return value


def decode_access_token(
    token: str,
    keys: Mapping[str, Mapping[str, Any]],
    settings: Settings,
    *,
    kid: str | None = None,
) -> AccessClaims:
    """Verify ``token`` against ``keys`` (kid → public JWK); pure, no I/O. ``kid``: the header's,
    when the caller has already parsed it (:func:`_unverified_kid`)."""
    kid, claims = _decode(
        token,
        keys,
        issuer=settings.auth.issuer,
        audience=settings.auth.audience,
        token_use=_ACCESS_USE,
        kid=kid,
    )
    roles = claims.get("roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise _refuse("claim_roles")
    scope = claims.get("scope")
    if not isinstance(scope, str):
        raise _refuse("claim_scope")
    sid = claims.get("sid")
    client_id = claims.get("client_id")
    if client_id is not None and not isinstance(client_id, str):
        raise _refuse("claim_client_id")
    sub_type = claims.get("sub_type", "client")
    if sub_type not in ("client", "user"):
        raise _refuse("claim_sub_type")
    context = {name: claims.get(name) for name in ("patient", "encounter")}
    if any(value is not None and not isinstance(value, str) for value in context.values()):
        raise _refuse("claim_context")
    return AccessClaims(
        subject=_uuid_claim(claims, "sub"),
        tenant_id=_uuid_claim(claims, "tid"),
        tenant=_str_claim(claims, "tenant", 63),
        roles=frozenset(roles),
        scopes=frozenset(scope.split()),
        jti=_str_claim(claims, "jti"),
        issued_at=datetime.fromtimestamp(_int_claim(claims, "iat"), UTC),
        expires_at=datetime.fromtimestamp(_int_claim(claims, "exp"), UTC),
        session_id=_uuid_claim(claims, "sid") if sid is not None else None,
        kid=kid,
        client_id=client_id,
        delegated=client_id is not None and sub_type == "user",
        patient=context["patient"],
        encounter=context["encounter"],
    )


async def verify_access_token(
    session: AsyncSession, settings: Settings, token: str
) -> AccessClaims:
    """Verify signature and claims with our current keys (no deny-list or status check here)."""
    kid = _unverified_kid(token)
    keys = await load_verification_keys(session, wanted_kid=kid)
    return decode_access_token(token, keys, settings, kid=kid)


SessionSource = Callable[[], Awaitable[AsyncSession]]
"""Opens (or returns) the request's database session only when it is needed."""


@dataclass(frozen=True, slots=True)
class _Verified:
    claims: AccessClaims
    exp: int  # epoch seconds


class _VerifiedTokens:
    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._entries: OrderedDict[bytes, _Verified] = OrderedDict()

    def get(self, digest: bytes) -> _Verified | None:
        found = self._entries.get(digest)
        if found is not None:
            self._entries.move_to_end(digest)
        return found

    def put(self, digest: bytes, claims: AccessClaims) -> None:
        self._entries[digest] = _Verified(claims, int(claims.expires_at.timestamp()))
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def drop(self, digest: bytes) -> None:
        self._entries.pop(digest, None)

    def __len__(self) -> int:
        return len(self._entries)


# One cache per (issuer, audience): a token verified for one app's settings is not another's.
_VERIFIED: Final[dict[tuple[str, str], _VerifiedTokens]] = {}


def forget_verified_tokens() -> None:
    """Empty the verified-token caches (tests)."""
    _VERIFIED.clear()


async def verify_access_token_cached(
    session: SessionSource, settings: Settings, token: str
) -> AccessClaims:
    """:func:`verify_access_token`, verified once per token and process (see the module doc).

    ``session`` is called only when the verification keys must be (re)loaded.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise _refuse("malformed")
    audience = (settings.auth.issuer, settings.auth.audience)
    cache = _VERIFIED.get(audience)
    if cache is None:
        cache = _VERIFIED[audience] = _VerifiedTokens(VERIFIED_TOKENS_MAX)
    digest = hashlib.sha256(token.encode("utf-8")).digest()
    hit = cache.get(digest)
    if hit is not None:
        if hit.exp < int(time.time()):
            cache.drop(digest)
            raise _refuse("expired", _EXPIRED)
        kid = hit.claims.kid
        current = kid_is_current(kid)
        if current is None:
            current = kid in await load_verification_keys(await session(), wanted_kid=kid)
        if not current:
            cache.drop(digest)
            raise _refuse("kid_unknown")
        return hit.claims
    kid = _unverified_kid(token)
    keys = cached_verification_keys(kid)
    if keys is None:
        keys = await load_verification_keys(await session(), wanted_kid=kid)
    claims = decode_access_token(token, keys, settings, kid=kid)
    cache.put(digest, claims)
    return claims


def encode_access_token(
    key: ActiveSigningKey,
    settings: Settings,
    *,
    subject: uuid.UUID,
    tenant_id: uuid.UUID,
    tenant: str,
    roles: Iterable[str],
    session_id: uuid.UUID | None = None,
    now: datetime | None = None,
    ttl_seconds: int | None = None,
    scopes: Iterable[str] | None = None,
    client_id: str | None = None,
    delegated: bool = False,
    patient: str | None = None,
    encounter: str | None = None,
) -> IssuedAccessToken:
    """Sign an access token for a user (roles sorted; scopes derived from the roles), or, with
    ``client_id`` and ``scopes``, for a SMART client (subject = the client's id), or, with
    ``delegated`` too, for a SMART app acting for the user ``subject`` (launch context in
    ``patient``/``encounter``)."""
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    ttl = settings.auth.access_token_ttl_seconds if ttl_seconds is None else ttl_seconds
    expires = issued + timedelta(seconds=ttl)
    role_list = sorted(set(roles))
    scope = " ".join(sorted(scopes_for(role_list) if scopes is None else set(scopes)))
    jti = secrets.token_urlsafe(24)
    claims: dict[str, Any] = {
        "iss": settings.auth.issuer,
        "aud": settings.auth.audience,
        "sub": str(subject),
        "tid": str(tenant_id),
        "tenant": tenant,
        "roles": role_list,
        "scope": scope,
        "jti": jti,
        "iat": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
        "token_use": _ACCESS_USE,
    }
    if session_id is not None:
        claims["sid"] = str(session_id)
    if client_id is not None:
        claims["client_id"] = client_id
        claims["sub_type"] = "user" if delegated else "client"
    for name, value in (("patient", patient), ("encounter", encounter)):
        if value is not None:
            claims[name] = value
    token = jwt.encode(
        claims, key.private_pem.decode("ascii"), algorithm=ALGORITHM, headers={"kid": key.kid}
    )
    return IssuedAccessToken(token=token, jti=jti, expires_at=expires, expires_in=ttl, scope=scope)


def encode_mfa_challenge(
    key: ActiveSigningKey, settings: Settings, *, user_id: uuid.UUID, tenant_id: uuid.UUID
) -> str:
    """The one-use token a client presents with its TOTP or recovery code."""
    now = datetime.now(UTC).replace(microsecond=0)
    claims = {
        "iss": settings.auth.issuer,
        "aud": f"{settings.auth.audience}:mfa",
        "sub": str(user_id),
        "tid": str(tenant_id),
        "jti": secrets.token_urlsafe(24),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=MFA_CHALLENGE_TTL_SECONDS)).timestamp()),
        "token_use": _MFA_USE,
    }
    return str(
        jwt.encode(
            claims, key.private_pem.decode("ascii"), algorithm=ALGORITHM, headers={"kid": key.kid}
        )
    )


def decode_mfa_challenge(
    token: str, keys: Mapping[str, Mapping[str, Any]], settings: Settings
) -> MfaChallenge:
    _, claims = _decode(
        token,
        keys,
        issuer=settings.auth.issuer,
        audience=f"{settings.auth.audience}:mfa",
        token_use=_MFA_USE,
        expired_detail="The MFA challenge has expired: log in again",
    )
    return MfaChallenge(
        user_id=_uuid_claim(claims, "sub"),
        tenant_id=_uuid_claim(claims, "tid"),
        jti=_str_claim(claims, "jti"),
        expires_at=datetime.fromtimestamp(_int_claim(claims, "exp"), UTC),
    )


async def verify_mfa_challenge(
    session: AsyncSession, settings: Settings, token: str
) -> MfaChallenge:
    kid = _unverified_kid(token)
    keys = await load_verification_keys(session, wanted_kid=kid)
    return decode_mfa_challenge(token, keys, settings)


async def issue_access_token_for(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    session_id: uuid.UUID | None = None,
) -> str:
    """An access token for ``user`` with its current roles (tests, operator tooling)."""
    tenant = await session.get(Tenant, user.tenant_id)
    if tenant is None:
        raise BearerChallenge("The user's tenant does not exist")
    roles = (
        await session.scalars(select(RoleGrant.role).where(RoleGrant.user_id == user.id))
    ).all()
    key = await current_signing_key(session, settings)
    issued = encode_access_token(
        key,
        settings,
        subject=user.id,
        tenant_id=tenant.id,
        tenant=tenant.slug,
        roles=roles,
        session_id=session_id,
    )
    return issued.token
