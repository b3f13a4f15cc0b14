"""What a SMART app gets for a code or a refresh token, and how it ends.

- The access token is a user token with the app's ``client_id`` (``sub_type`` "user"), the
  consented scopes, the launch context and ``sid`` = the grant's family: revoking the family
  denies every access token of it (the deny-list of ehr.platform.auth.revocation).
- A refresh token is issued for ``offline_access`` (``smart.offline_refresh_ttl_seconds``,
  renewed on each use) or ``online_access`` (``smart.online_refresh_ttl_seconds`` from the
  sign-in, never extended); each use rotates it; presenting a rotated one again revokes the
  family (RFC 6749 §10.4, OAuth 2.0 Security BCP).
- ``openid``: an OpenID Connect ``id_token`` (ES256, our JWKS) with ``fhirUser`` (the user's
  Practitioner, or a portal user's Patient) and, with ``profile``, the user's name.
- Introspection (RFC 7662) answers only for tokens issued to the asking client; revocation
  (RFC 7009) of a refresh token ends its family, of an access token that token.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from jose import jwt
from redis.asyncio import Redis
from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings
from ehr.core.db.models import RevokedToken, SmartClient, SmartRefreshToken, Tenant, User
from ehr.platform.auth.delegation import delegable_scopes
from ehr.platform.auth.revocation import deny_ids, revoke_access_token, revoke_family_access
from ehr.platform.auth.service import Account, load_account
from ehr.platform.auth.signing_keys import ALGORITHM, current_signing_key
from ehr.platform.auth.tokens import BearerChallenge, encode_access_token, verify_access_token
from ehr.platform.smart.authorizations import token_hash
from ehr.platform.smart.errors import OAuthError

__all__ = [
    "AppGrant",
    "fhir_base",
    "introspect",
    "issue_for_grant",
    "refresh_grant",
    "revoke",
    "revoke_family",
]

_ID_TOKEN_TTL: Final = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class AppGrant:
    """What one authorization (or refresh) lets the app have."""

    client: SmartClient
    account: Account
    scopes: tuple[str, ...]
    patient: str | None
    encounter: str | None
    family_id: uuid.UUID
    nonce: str | None = None
    standalone: bool = False


def fhir_base(settings: Settings) -> str:
    """Our public FHIR base: the ``iss`` of launches and id_tokens (OIDC discovery under it)."""
    return f"{settings.gateway.public_base_url.rstrip('/')}/fhir"


def _fhir_user(settings: Settings, user: User) -> str | None:
    if user.practitioner_id:
        return f"{fhir_base(settings)}/Practitioner/{user.practitioner_id}"
    if user.patient_id:
        return f"{fhir_base(settings)}/Patient/{user.patient_id}"
    return None


def _id_token(key_pem: bytes, kid: str, settings: Settings, grant: AppGrant) -> str:
    now = datetime.now(UTC).replace(microsecond=0)
    user = grant.account.user
    claims: dict[str, Any] = {
        "iss": fhir_base(settings),
        "sub": str(user.id),
        "aud": grant.client.client_id,
        "iat": int(now.timestamp()),
        "exp": int((now + _ID_TOKEN_TTL).timestamp()),
        "auth_time": int(now.timestamp()),
    }
    if grant.nonce is not None:
        claims["nonce"] = grant.nonce
    fhir_user = _fhir_user(settings, user)
    if fhir_user is not None and {"fhirUser", "profile"} & set(grant.scopes):
        claims["fhirUser"] = fhir_user
    if "profile" in grant.scopes:
        claims["name"] = user.display_name or user.username
        claims["preferred_username"] = user.username
    return str(
        jwt.encode(claims, key_pem.decode("ascii"), algorithm=ALGORITHM, headers={"kid": kid})
    )


async def _new_refresh(
    session: AsyncSession, settings: Settings, grant: AppGrant, *, expires_at: datetime | None
) -> str | None:
    offline = "offline_access" in grant.scopes
    if not offline and "online_access" not in grant.scopes:
        return None
    ttl = (
        settings.smart.offline_refresh_ttl_seconds
        if offline
        else settings.smart.online_refresh_ttl_seconds
    )
    token = secrets.token_urlsafe(32)
    session.add(
        SmartRefreshToken(
            token_hash=token_hash(token),
            family_id=grant.family_id,
            tenant_id=grant.account.tenant.id,
            client_id=grant.client.id,
            user_id=grant.account.user.id,
            scopes=list(grant.scopes),
            patient=grant.patient,
            encounter=grant.encounter,
            offline=offline,
            expires_at=(
                expires_at
                if expires_at is not None and not offline
                else datetime.now(UTC) + timedelta(seconds=ttl)
            ),
        )
    )
    return token


async def issue_for_grant(
    session: AsyncSession,
    settings: Settings,
    grant: AppGrant,
    *,
    refresh_expires_at: datetime | None = None,
) -> dict[str, Any]:
    """The token response (SMART App Launch §token response): access token, scope, context,
    refresh token and id_token as the scopes ask."""
    account = grant.account
    key = await current_signing_key(session, settings)
    issued = encode_access_token(
        key,
        settings,
        subject=account.user.id,
        tenant_id=account.tenant.id,
        tenant=account.tenant.slug,
        roles=(),
        session_id=grant.family_id,
        scopes=grant.scopes,
        client_id=grant.client.client_id,
        delegated=True,
        patient=grant.patient,
        encounter=grant.encounter,
    )
    body: dict[str, Any] = {
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    }
    if grant.patient is not None:
        body["patient"] = grant.patient
        # An EHR launch runs inside the EHR's own patient banner; a standalone app shows one.
        body["need_patient_banner"] = grant.standalone
    if grant.encounter is not None:
        body["encounter"] = grant.encounter
    body["smart_style_url"] = (
        f"{settings.gateway.public_base_url.rstrip('/')}/oauth2/smart-style.json"
    )
    refresh = await _new_refresh(session, settings, grant, expires_at=refresh_expires_at)
    if refresh is not None:
        body["refresh_token"] = refresh
    if "openid" in grant.scopes:
        body["id_token"] = _id_token(key.private_pem, key.kid, settings, grant)
    return body


async def revoke_family(
    session: AsyncSession,
    redis: Redis,
    settings: Settings,
    *,
    family_id: uuid.UUID,
    user_id: uuid.UUID | None,
    reason: str,
) -> None:
    """End a grant: its refresh tokens and every access token issued under it."""
    await session.execute(
        update(SmartRefreshToken)
        .where(SmartRefreshToken.family_id == family_id, SmartRefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    await revoke_family_access(
        session,
        redis,
        family_id=family_id,
        user_id=user_id,
        access_ttl_seconds=settings.auth.access_token_ttl_seconds,
        reason=reason,
    )


async def refresh_grant(
    session: AsyncSession,
    redis: Redis,
    settings: Settings,
    *,
    client: SmartClient,
    refresh_token: str,
    scope: str | None,
) -> tuple[dict[str, Any], AppGrant]:
    """Rotate ``refresh_token`` (see the module doc); ``scope`` may narrow, never widen."""
    row = await session.get(SmartRefreshToken, token_hash(refresh_token), with_for_update=True)
    now = datetime.now(UTC)
    if row is None or row.client_id != client.id:
        raise OAuthError("invalid_grant", "The refresh token is unknown")
    if row.revoked_at is not None or row.used_at is not None:
        await revoke_family(
            session,
            redis,
            settings,
            family_id=row.family_id,
            user_id=row.user_id,
            reason="smart_refresh_reuse",
        )
        await session.commit()
        raise OAuthError("invalid_grant", "The refresh token has been used or revoked")
    if row.expires_at <= now:
        raise OAuthError("invalid_grant", "The refresh token has expired: authorize again")
    account = await load_account(session, row.user_id)
    if account is None or not account.active or account.tenant.id != row.tenant_id:
        raise OAuthError("invalid_grant", "The user is no longer active")
    scopes = list(row.scopes)
    if scope is not None:
        narrowed = scope.split()
        if not narrowed or set(narrowed) - set(scopes):
            raise OAuthError("invalid_scope", "A refresh may only narrow the granted scopes")
        scopes = [s for s in scopes if s in narrowed]
    scopes = sorted(delegable_scopes(scopes, account.roles))
    row.used_at = now
    grant = AppGrant(
        client=client,
        account=account,
        scopes=tuple(scopes),
        patient=row.patient,
        encounter=row.encounter,
        family_id=row.family_id,
    )
    body = await issue_for_grant(session, settings, grant, refresh_expires_at=row.expires_at)
    body.pop("id_token", None)  # a refresh re-issues access, not a new authentication
    return body, grant


async def _active_access(
    session: AsyncSession, settings: Settings, token: str
) -> dict[str, Any] | None:
    try:
        claims = await verify_access_token(session, settings, token)
    except BearerChallenge:
        return None
    denied = deny_ids(claims.jti, claims.session_id)
    if await session.scalar(select(exists().where(RevokedToken.jti.in_(denied)))):
        return None
    answer: dict[str, Any] = {
        "active": True,
        "token_type": "Bearer",
        "scope": " ".join(sorted(claims.scopes)),
        "client_id": claims.client_id,
        "sub": str(claims.subject),
        "iss": settings.auth.issuer,
        "iat": int(claims.issued_at.timestamp()),
        "exp": int(claims.expires_at.timestamp()),
        "jti": claims.jti,
        "tenant": claims.tenant,
    }
    if claims.delegated:
        user = await session.get(User, claims.subject)
        if user is None or user.status != "active":
            return None
        fhir_user = _fhir_user(settings, user)
        if fhir_user is not None:
            answer["fhirUser"] = fhir_user
        answer["username"] = user.username
    for name in ("patient", "encounter"):
        value = getattr(claims, name)
        if value is not None:
            answer[name] = value
    return answer


async def introspect(
    session: AsyncSession,
    redis: Redis,
    settings: Settings,
    *,
    client: SmartClient,
    token: str,
) -> dict[str, Any]:
    """RFC 7662: ``{"active": false}`` unless the token is live and issued to ``client``."""
    row = await session.get(SmartRefreshToken, token_hash(token))
    if row is not None:
        live = (
            row.client_id == client.id
            and row.revoked_at is None
            and row.used_at is None
            and row.expires_at > datetime.now(UTC)
        )
        if not live:
            return {"active": False}
        return {
            "active": True,
            "token_type": "refresh_token",
            "scope": " ".join(row.scopes),
            "client_id": client.client_id,
            "sub": str(row.user_id),
            "exp": int(row.expires_at.timestamp()),
        }
    answer = await _active_access(session, settings, token)
    if answer is None or answer.get("client_id") != client.client_id:
        return {"active": False}
    owner = await session.get(Tenant, client.tenant_id)
    if owner is None or owner.slug != answer["tenant"]:
        return {"active": False}
    return answer


async def revoke(
    session: AsyncSession,
    redis: Redis,
    settings: Settings,
    *,
    client: SmartClient,
    token: str,
) -> None:
    """RFC 7009: a refresh token of ``client`` ends its family; an access token of ``client``
    is denied; anything else is ignored (the answer is the same 200)."""
    row = await session.get(SmartRefreshToken, token_hash(token))
    if row is not None:
        if row.client_id == client.id:
            await revoke_family(
                session,
                redis,
                settings,
                family_id=row.family_id,
                user_id=row.user_id,
                reason="smart_revoked",
            )
        return
    try:
        claims = await verify_access_token(session, settings, token)
    except BearerChallenge:
        return
    if claims.client_id != client.client_id:
        return
    await revoke_access_token(
        session,
        redis,
        jti=claims.jti,
        user_id=claims.subject if claims.delegated else None,
        expires_at=claims.expires_at,
        reason="smart_revoked",
    )
    if claims.delegated and claims.session_id is not None:
        await revoke_family(
            session,
            redis,
            settings,
            family_id=claims.session_id,
            user_id=claims.subject,
            reason="smart_revoked",
        )
