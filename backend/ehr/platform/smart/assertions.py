"""A Backend Services client's assertion (``private_key_jwt``, RFC 7523 as SMART profiles it):
signed with RS384 or ES384 by a key of the client's registered JWKS, ``iss`` = ``sub`` =
``client_id``, ``aud`` = our token endpoint, ``exp`` at most five minutes ahead, a ``jti`` never
seen before (kept in PostgreSQL until the assertion expires)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from jose import jwt
from jose.exceptions import ExpiredSignatureError, JWTClaimsError, JWTError
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import SmartAssertionUse, SmartClient
from ehr.platform.auth.client_keys import b64_decode, usable_keys
from ehr.platform.smart.errors import OAuthError

__all__ = ["ASSERTION_ALGORITHMS", "ASSERTION_TYPE", "MAX_ASSERTION_LIFETIME", "verify_assertion"]

ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# SMART Backend Services: servers SHALL support RS384 and ES384.
ASSERTION_ALGORITHMS: Final = frozenset({"RS384", "ES384"})
MAX_ASSERTION_LIFETIME: Final = timedelta(minutes=5)
_LEEWAY_SECONDS: Final = 30
_MAX_ASSERTION_BYTES: Final = 16_384


@dataclass(frozen=True, slots=True)
class _Header:
    alg: str
    kid: str


def _refused(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, status_code=401)


def _header_and_issuer(assertion: str) -> tuple[_Header, str]:
    if len(assertion) > _MAX_ASSERTION_BYTES or assertion.count(".") != 2:
        raise _refused("The client assertion is not a signed JWT")
    head, body, _ = assertion.split(".")
    try:
        header = json.loads(b64_decode(head))
        claims = json.loads(b64_decode(body))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _refused("The client assertion is not a signed JWT") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _refused("The client assertion is not a signed JWT")
    alg, kid, iss = header.get("alg"), header.get("kid"), claims.get("iss")
    if alg not in ASSERTION_ALGORITHMS:
        raise _refused("The client assertion must be signed with RS384 or ES384")
    if not isinstance(kid, str) or not kid:
        raise _refused("The client assertion's header names no 'kid'")
    if not isinstance(iss, str) or not iss:
        raise _refused("The client assertion names no issuer")
    return _Header(alg=str(alg), kid=kid), iss


async def verify_assertion(
    session: AsyncSession,
    assertion: str,
    *,
    client_id: str | None,
    audience: str,
    now: datetime | None = None,
) -> SmartClient:
    """The registered, enabled client that signed ``assertion``; its ``jti`` is recorded in the
    caller's transaction (a replay fails on the primary key). Any failure: ``invalid_client``."""
    header, issuer = _header_and_issuer(assertion)
    if client_id is not None and client_id != issuer:
        raise _refused("client_id and the assertion's issuer differ")
    client = await session.scalar(select(SmartClient).where(SmartClient.client_id == issuer))
    if client is None or client.disabled_at is not None:
        raise _refused("Unknown or disabled client")
    key = next((k for k in usable_keys(client.jwks) if k.get("kid") == header.kid), None)
    if key is None:
        raise _refused("The assertion is signed with a key the client did not register")
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            key,
            algorithms=[header.alg],
            audience=audience,
            issuer=client.client_id,
            subject=client.client_id,
            options={"require_exp": True, "require_jti": True, "leeway": _LEEWAY_SECONDS},
        )
    except ExpiredSignatureError as exc:
        raise _refused("The client assertion has expired") from exc
    except JWTClaimsError as exc:
        raise _refused("The client assertion's iss, sub or aud is wrong") from exc
    except JWTError as exc:
        raise _refused("The client assertion's signature does not verify") from exc
    moment = now or datetime.now(UTC)
    expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
    if expires - moment > MAX_ASSERTION_LIFETIME + timedelta(seconds=_LEEWAY_SECONDS):
        raise _refused("The client assertion must expire within five minutes")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 255:
        raise _refused("The client assertion needs a 'jti'")
    await session.execute(
        delete(SmartAssertionUse).where(
            SmartAssertionUse.client_id == client.id, SmartAssertionUse.expires_at < moment
        )
    )
    recorded = await session.execute(
        insert(SmartAssertionUse)
        .values(client_id=client.id, jti=jti, expires_at=expires)
        .on_conflict_do_nothing()
        .returning(SmartAssertionUse.jti)
    )
    if recorded.scalar_one_or_none() is None:
        raise _refused("The client assertion has been used before")
    return client
