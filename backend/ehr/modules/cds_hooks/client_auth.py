"""Who is calling a CDS service: CDS Hooks 2.0.1 "Trusting CDS Clients", deny unless proven.

Every call to ``/cds-services...`` (discovery too) carries ``Authorization: Bearer <JWT>`` signed
by a registered CDS client (:class:`~ehr.core.db.models.CdsClient`) with an asymmetric key. The
token is
accepted only if, in this order:

1. the header is ``Bearer`` + three base64url segments, at most :data:`MAX_TOKEN_LENGTH` chars;
2. the JOSE header's ``alg`` is in ``settings.cds_hooks.algorithms`` AND asymmetric (``none`` and
   every ``HS*`` are refused whatever the settings say); ``kid`` is present; no ``crit``;
3. the (unverified) ``iss`` names an enabled client of an active tenant (one indexed read on
   PostgreSQL, no transaction);
4. the key: the client's stored JWKS and/or the JWKS at the header's ``jku`` — only if that exact
   URL is on the client's ``jku_allowlist``; without ``jku``, the stored JWKS then the allow-listed
   URLs. Fetched key sets are cached per process (:class:`JwksCache`); an unknown ``kid`` refetches
   at most once per ``jwks_min_refresh_seconds`` per URL (key rotation);
5. the key's type and curve fit ``alg`` (ES256 = EC P-256, ES384 = P-384, ES512 = P-521, RS*/PS* =
   RSA ≥ 2048 bits) and the signature verifies (python-jose; PS* with ``cryptography``). Only
   public EC/RSA keys are ever used: ``oct`` keys and keys with private members are ignored, so an
   HMAC "signed with the public key" cannot verify;
6. claims: ``iss``, ``aud``, ``exp``, ``iat``, ``jti`` present; ``exp`` not passed, ``iat`` and
   ``nbf`` not in the future (``clock_skew_seconds`` either way); ``exp - iat`` at most
   ``max_token_lifetime_seconds``; ``aud`` (a string, or a list holding it) EXACTLY
   ``{public_base}{request path}``;
7. the ``jti`` was not seen before for this issuer: Redis ``SET NX EX`` until the token expires.
   Redis unreachable → 503 (fail closed).

Every refusal is :class:`CdsClientUnauthorized` (401, ``WWW-Authenticate: Bearer``) with a reason
code (``extra["reason"]``) and a detail saying what was wrong; neither — nor the logs
(``cds_hooks.client_auth.refused``) — ever contain the token.

Routes use :data:`CdsClientDep`; its dependency carries the :data:`CDS_CLIENT_JWT` access marker
(``tests/unit/platform/auth/test_route_permissions.py``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

import httpx
import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers
from fastapi import Depends, Request
from jose import JWSError, JWTError, jwk, jws, jwt
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ehr.core.config import CdsHooksSettings, Settings
from ehr.core.db.models import CdsClient, Tenant
from ehr.core.dependencies import AppResources, ResourcesDep
from ehr.core.errors import AuthenticationRequired, DependencyUnavailable
from ehr.platform.auth.authorization import PERMISSION_ATTRIBUTE

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "CDS_CLIENT_JWT",
    "JTI_KEY_PREFIX",
    "MAX_JWKS_BYTES",
    "MAX_TOKEN_LENGTH",
    "CdsClientDep",
    "CdsClientIdentity",
    "CdsClientUnauthorized",
    "JwksCache",
    "JwksFetchError",
    "RegisteredClient",
    "TokenHeader",
    "VerifiedClaims",
    "accepted_algorithms",
    "authenticate_cds_client",
    "bearer_token",
    "check_claims",
    "expected_audience",
    "fetch_jwks",
    "get_cds_client",
    "jwk_problem",
    "jwks_cache_for",
    "load_client",
    "public_base_url",
    "read_header",
    "record_jti",
    "replay_key",
    "usable_keys",
    "verify_signature",
]

logger = structlog.get_logger(__name__)

# The access marker of routes that CDS clients call with a signed JWT (see the route test).
CDS_CLIENT_JWT: Final = "cds-client-jwt"

MAX_TOKEN_LENGTH: Final = 8192
MAX_JWKS_BYTES: Final = 64 * 1024
JTI_KEY_PREFIX: Final = "ehr:cds:jti:"
_MAX_KID_LENGTH: Final = 256
_MAX_JTI_LENGTH: Final = 255
_MAX_ISSUER_LENGTH: Final = 255
_MAX_JKU_LENGTH: Final = 2048
_MIN_RSA_BITS: Final = 2048
_TOKEN_PATTERN: Final = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_PRINTABLE_ALG: Final = re.compile(r"^[A-Za-z0-9+_-]{1,16}$")

# alg → (kty, crv or None). Nothing symmetric is, or can be, in here.
ASYMMETRIC_ALGORITHMS: Final[Mapping[str, tuple[str, str | None]]] = {
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
}
_PSS_HASHES: Final[Mapping[str, Callable[[], hashes.HashAlgorithm]]] = {
    "PS256": hashes.SHA256,
    "PS384": hashes.SHA384,
    "PS512": hashes.SHA512,
}
# JWK members that only a private (or symmetric) key has.
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_CURVES: Final = frozenset({"P-256", "P-384", "P-521"})


# --- identity and errors ----------------------------------------------------------------------


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


class CdsClientUnauthorized(AuthenticationRequired):
    """401: the CDS client's JWT was missing or not acceptable (``reason`` says why)."""

    code = "cds_client_unauthorized"
    title = "CDS client not authenticated"

    def __init__(self, reason: str, detail: str) -> None:
        error = None if reason == "missing_credentials" else "invalid_token"
        challenge = 'Bearer realm="cds-hooks"'
        if error is not None:
            challenge += f', error="{error}"'
        super().__init__(detail, extra={"reason": reason}, headers={"WWW-Authenticate": challenge})
        self.reason = reason


def _refuse(reason: str, detail: str, *, issuer: str | None = None) -> CdsClientUnauthorized:
    logger.info("cds_hooks.client_auth.refused", reason=reason, iss=issuer)
    return CdsClientUnauthorized(reason, detail)


# --- the pure parts ---------------------------------------------------------------------------


def bearer_token(authorization: str | None) -> str:
    """The compact JWT of an ``Authorization: Bearer`` header (structure checked only)."""
    if authorization is None or not authorization.strip():
        raise _refuse(
            "missing_credentials",
            "No credentials: send 'Authorization: Bearer <JWT>' signed by a registered CDS client",
        )
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _refuse("malformed_authorization", "Use 'Authorization: Bearer <JWT>'")
    if len(token) > MAX_TOKEN_LENGTH or not _TOKEN_PATTERN.fullmatch(token):
        raise _refuse("malformed_token", "The bearer token is not a well-formed compact JWT")
    return token


def accepted_algorithms(settings: CdsHooksSettings) -> frozenset[str]:
    """The configured algorithms that are asymmetric (anything else is never accepted)."""
    return frozenset(alg for alg in settings.algorithms if alg in ASYMMETRIC_ALGORITHMS)


@dataclass(frozen=True, slots=True)
class TokenHeader:
    alg: str
    kid: str
    jku: str | None


def read_header(token: str, settings: CdsHooksSettings) -> TokenHeader:
    """The JOSE header, if its ``alg`` is accepted and it names a ``kid``."""
    try:
        header = jwt.get_unverified_header(token)
    except (JWTError, JWSError, ValueError, TypeError):
        raise _refuse("malformed_token", "The JWT header cannot be decoded") from None
    if not isinstance(header, dict):
        raise _refuse("malformed_token", "The JWT header is not a JSON object")
    alg = header.get("alg")
    accepted = accepted_algorithms(settings)
    if not isinstance(alg, str) or alg not in accepted:
        shown = alg if isinstance(alg, str) and _PRINTABLE_ALG.fullmatch(alg) else "?"
        raise _refuse(
            "algorithm_not_allowed",
            f"The JWT algorithm '{shown}' is not accepted (unsigned and HMAC tokens never are); "
            f"use one of {', '.join(sorted(accepted))}",
        )
    if "crit" in header:
        raise _refuse("critical_header", "The JWT header's 'crit' extensions are not supported")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
        raise _refuse("malformed_token", "The JWT header's 'typ' must be 'JWT'")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > _MAX_KID_LENGTH:
        raise _refuse("kid_missing", "The JWT header must name the signing key ('kid')")
    jku = header.get("jku")
    if jku is not None and (not isinstance(jku, str) or not jku or len(jku) > _MAX_JKU_LENGTH):
        raise _refuse("malformed_token", "The JWT header's 'jku' is not a URL")
    return TokenHeader(alg=alg, kid=kid, jku=jku)


def unverified_issuer(token: str) -> str:
    try:
        claims = jwt.get_unverified_claims(token)
    except (JWTError, JWSError, ValueError, TypeError):
        raise _refuse("malformed_token", "The JWT payload cannot be decoded") from None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    if not isinstance(issuer, str) or not issuer or len(issuer) > _MAX_ISSUER_LENGTH:
        raise _refuse("claim_missing", "The JWT has no valid 'iss' claim")
    return issuer


def public_base_url(settings: Settings) -> str:
    """The origin CDS clients call us at (``cds_hooks.public_base_url`` or the gateway's)."""
    base = settings.cds_hooks.public_base_url or settings.gateway.public_base_url
    return base.rstrip("/")


def expected_audience(settings: Settings, path: str) -> str:
    """The one ``aud`` accepted for a call to ``path``: ``{public_base}{path}``."""
    return f"{public_base_url(settings)}{path}"


def jwk_problem(key: object) -> str | None:
    """Why ``key`` cannot be a CDS client's signing key (None: a usable public EC/RSA key)."""
    if not isinstance(key, Mapping):
        return "a key is not a JSON object"
    kty = key.get("kty")
    if kty not in ("EC", "RSA"):
        return f"key type {kty!r} is not accepted (public EC or RSA keys only)"
    if any(member in key for member in _PRIVATE_MEMBERS):
        return "a key carries private key material"
    kid = key.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > _MAX_KID_LENGTH:
        return "every key needs a 'kid'"
    use = key.get("use")
    if use is not None and use != "sig":
        return f"key {kid!r} is not a signing key (use={use!r})"
    ops = key.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return f"key {kid!r} is not for verifying ('key_ops')"
    alg = key.get("alg")
    if alg is not None:
        expected = ASYMMETRIC_ALGORITHMS.get(alg) if isinstance(alg, str) else None
        if expected is None or expected[0] != kty:
            return f"key {kid!r} names an algorithm that does not fit it ({alg!r})"
        if expected[1] is not None and key.get("crv") != expected[1]:
            return f"key {kid!r}: algorithm {alg} needs curve {expected[1]}"
    if kty == "EC":
        if key.get("crv") not in _CURVES:
            return f"key {kid!r}: curve {key.get('crv')!r} is not accepted"
        if not isinstance(key.get("x"), str) or not isinstance(key.get("y"), str):
            return f"key {kid!r}: an EC key needs 'x' and 'y'"
    else:
        n, e = key.get("n"), key.get("e")
        if not isinstance(n, str) or not isinstance(e, str):
            return f"key {kid!r}: an RSA key needs 'n' and 'e'"
        try:
            bits = _b64_int(n).bit_length()
        except ValueError:
            return f"key {kid!r}: 'n' is not base64url"
        if bits < _MIN_RSA_BITS:
            return f"key {kid!r}: RSA keys need at least {_MIN_RSA_BITS} bits"
    try:
        jwk.construct(dict(key), "ES256" if kty == "EC" else "RS256")
    except Exception:  # noqa: BLE001 - any failure of the key parser means "unusable"
        return f"key {kid!r} cannot be parsed"
    return None


def usable_keys(jwks: object) -> tuple[dict[str, Any], ...]:
    """The public EC/RSA signing keys of a JWKS document (others are ignored)."""
    if not isinstance(jwks, Mapping):
        return ()
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        return ()
    return tuple(dict(key) for key in keys if jwk_problem(key) is None)


def _b64_decode(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


def _b64_int(segment: str) -> int:
    return int.from_bytes(_b64_decode(segment), "big")


def _fits(key: Mapping[str, Any], alg: str) -> bool:
    kty, crv = ASYMMETRIC_ALGORITHMS[alg]
    if key.get("kty") != kty or (crv is not None and key.get("crv") != crv):
        return False
    key_alg = key.get("alg")
    return key_alg is None or key_alg == alg


def _verify_pss(token: str, key: Mapping[str, Any], alg: str) -> bool:
    signing_input, _, signature = token.rpartition(".")
    try:
        public_key = RSAPublicNumbers(_b64_int(key["e"]), _b64_int(key["n"])).public_key()
        digest = _PSS_HASHES[alg]()
        public_key.verify(
            _b64_decode(signature),
            signing_input.encode("ascii"),
            padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size),
            digest,
        )
    except (InvalidSignature, ValueError, KeyError, TypeError):
        return False
    return True


def verify_signature(
    token: str, header: TokenHeader, keys: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The verified payload of ``token``, signed by one of ``keys`` (those named ``header.kid``).

    Only public EC/RSA keys whose type (and curve) fit ``header.alg`` are tried, with that one
    algorithm: no symmetric key is ever constructed.
    """
    if header.alg not in ASYMMETRIC_ALGORITHMS:  # read_header refuses these; defence in depth
        raise _refuse("algorithm_not_allowed", "The JWT algorithm is not accepted")
    candidates = [
        key
        for key in keys
        if key.get("kid") == header.kid and jwk_problem(key) is None and _fits(key, header.alg)
    ]
    if not candidates:
        raise _refuse(
            "key_unsuitable",
            f"The key named by 'kid' cannot verify {header.alg} signatures (key type or curve)",
        )
    payload: bytes | None = None
    for key in candidates:
        if header.alg in _PSS_HASHES:
            if _verify_pss(token, key, header.alg):
                payload = _b64_decode(token.split(".")[1])
                break
            continue
        try:
            verified = jws.verify(token, jwk.construct(dict(key), header.alg), [header.alg])
        except (JWSError, JWTError, ValueError, TypeError):
            continue
        payload = verified if isinstance(verified, bytes) else None
        break
    if payload is None:
        raise _refuse("bad_signature", "The JWT signature does not verify with the client's key")
    try:
        claims = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise _refuse("malformed_token", "The JWT payload is not JSON") from None
    if not isinstance(claims, dict):
        raise _refuse("malformed_token", "The JWT payload is not a JSON object")
    return claims


@dataclass(frozen=True, slots=True)
class VerifiedClaims:
    issuer: str
    jti: str
    issued_at: float
    expires_at: float


def _numeric(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(float(value))
    ):
        raise _refuse("claim_missing", f"The JWT has no valid '{name}' claim (NumericDate)")
    return float(value)


def check_claims(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    audience: str,
    settings: CdsHooksSettings,
    now: float,
) -> VerifiedClaims:
    """Check the verified claims for ``issuer`` calling ``audience`` at ``now`` (epoch seconds)."""
    if claims.get("iss") != issuer:
        raise _refuse("claim_missing", "The JWT has no valid 'iss' claim", issuer=issuer)
    if "aud" not in claims:
        raise _refuse("claim_missing", "The JWT has no 'aud' claim", issuer=issuer)
    expires_at = _numeric(claims, "exp")
    issued_at = _numeric(claims, "iat")
    not_before = _numeric(claims, "nbf") if claims.get("nbf") is not None else None
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI_LENGTH:
        raise _refuse("claim_missing", "The JWT has no valid 'jti' claim", issuer=issuer)
    skew = settings.clock_skew_seconds
    if now > expires_at + skew:
        raise _refuse("expired", "The JWT has expired ('exp')", issuer=issuer)
    if issued_at > now + skew:
        raise _refuse("issued_in_future", "The JWT's 'iat' is in the future", issuer=issuer)
    if not_before is not None and not_before > now + skew:
        raise _refuse("not_yet_valid", "The JWT is not valid yet ('nbf')", issuer=issuer)
    if expires_at < issued_at:
        raise _refuse("claim_missing", "The JWT's 'exp' is before its 'iat'", issuer=issuer)
    if expires_at - issued_at > settings.max_token_lifetime_seconds:
        raise _refuse(
            "lifetime_too_long",
            f"The JWT lives longer than {settings.max_token_lifetime_seconds} seconds "
            "('exp' - 'iat')",
            issuer=issuer,
        )
    aud = claims["aud"]
    matches = aud == audience or (
        isinstance(aud, list) and all(isinstance(a, str) for a in aud) and audience in aud
    )
    if not matches:
        raise _refuse(
            "audience_mismatch",
            f"The JWT's 'aud' must be exactly the URL called: {audience}",
            issuer=issuer,
        )
    return VerifiedClaims(issuer=issuer, jti=jti, issued_at=issued_at, expires_at=expires_at)


def replay_key(issuer: str, jti: str) -> str:
    """The Redis key remembering ``jti`` of ``issuer`` (both hashed: bounded, opaque)."""
    iss_hash = hashlib.sha256(issuer.encode()).hexdigest()[:32]
    jti_hash = hashlib.sha256(jti.encode()).hexdigest()
    return f"{JTI_KEY_PREFIX}{iss_hash}:{jti_hash}"


async def record_jti(
    redis: Redis, claims: VerifiedClaims, *, settings: CdsHooksSettings, now: float
) -> None:
    """Remember the token's ``jti`` until it expires; a second use is refused (fail closed)."""
    ttl = max(1, math.ceil(claims.expires_at - now + settings.clock_skew_seconds))
    try:
        first = await redis.set(replay_key(claims.issuer, claims.jti), b"1", nx=True, ex=ttl)
    except (RedisError, OSError) as exc:
        logger.warning("cds_hooks.client_auth.replay_check_failed", error=type(exc).__name__)
        raise DependencyUnavailable("The token replay check is unavailable; retry later") from None
    if not first:
        raise _refuse("replayed", "The JWT's 'jti' has already been used", issuer=claims.issuer)


# --- JWKS from jku URLs -----------------------------------------------------------------------


class JwksFetchError(Exception):
    """A client's key set could not be fetched or read (the message never holds key material)."""


async def fetch_jwks(url: str, settings: CdsHooksSettings) -> tuple[dict[str, Any], ...]:
    """GET the JWKS at ``url``: no redirects, bounded time and size; its usable public keys."""
    if urlsplit(url).scheme not in ("https", "http"):
        raise JwksFetchError("not an http(s) URL")
    timeout = settings.jwks_fetch_timeout_seconds
    body = bytearray()
    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
            client.stream(
                "GET", url, headers={"Accept": "application/jwk-set+json, application/json"}
            ) as response,
        ):
            if response.status_code != 200:
                raise JwksFetchError(f"HTTP status {response.status_code}")
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > MAX_JWKS_BYTES:
                raise JwksFetchError("key set too large")
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise JwksFetchError("key set too large")
    except (httpx.HTTPError, TimeoutError, OSError) as exc:
        raise JwksFetchError(type(exc).__name__) from None
    try:
        document = json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError):
        raise JwksFetchError("not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksFetchError("not a JWKS document")
    return usable_keys(document)


Fetcher = Callable[[str, CdsHooksSettings], Awaitable[tuple[dict[str, Any], ...]]]


@dataclass(slots=True)
class _CachedKeySet:
    keys: tuple[dict[str, Any], ...]
    fetched_at: float


class JwksCache:
    """Key sets fetched from ``jku`` URLs, per process.

    A set is reused for ``jwks_cache_seconds``. A ``kid`` it lacks triggers a refetch, at most once
    per ``jwks_min_refresh_seconds`` per URL (so a client rotating keys is picked up, and a flood
    of made-up kids costs one request per interval). A failed fetch is not retried within that
    interval either: those calls are refused at once.
    """

    def __init__(
        self, *, fetch: Fetcher = fetch_jwks, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._sets: dict[str, _CachedKeySet] = {}
        self._attempted_at: dict[str, float] = {}
        self._failed: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    def _fresh(self, url: str, settings: CdsHooksSettings) -> _CachedKeySet | None:
        cached = self._sets.get(url)
        if cached is None or self._clock() - cached.fetched_at >= settings.jwks_cache_seconds:
            return None
        return cached

    def _recently_attempted(self, url: str, settings: CdsHooksSettings) -> bool:
        attempted = self._attempted_at.get(url)
        return attempted is not None and (
            self._clock() - attempted < settings.jwks_min_refresh_seconds
        )

    def _answer(
        self, url: str, kid: str, settings: CdsHooksSettings
    ) -> tuple[dict[str, Any], ...] | None:
        """Keys named ``kid`` without fetching, or None when a fetch is due."""
        cached = self._fresh(url, settings)
        if cached is not None:
            found = tuple(key for key in cached.keys if key.get("kid") == kid)
            if found or self._recently_attempted(url, settings):
                return found
            return None
        if url in self._failed and self._recently_attempted(url, settings):
            raise JwksFetchError("the last fetch failed moments ago")
        return None

    async def keys(
        self, url: str, kid: str, settings: CdsHooksSettings
    ) -> tuple[dict[str, Any], ...]:
        """The keys of the set at ``url`` named ``kid`` (possibly none); JwksFetchError."""
        answer = self._answer(url, kid, settings)
        if answer is not None:
            return answer
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            answer = self._answer(url, kid, settings)  # another call may have fetched meanwhile
            if answer is not None:
                return answer
            self._attempted_at[url] = self._clock()
            try:
                keys = await self._fetch(url, settings)
            except JwksFetchError:
                self._failed.add(url)
                raise
            self._failed.discard(url)
            self._sets[url] = _CachedKeySet(keys=keys, fetched_at=self._clock())
            logger.info("cds_hooks.jwks.fetched", url=url, keys=len(keys))
        return tuple(key for key in keys if key.get("kid") == kid)


def jwks_cache_for(request: Request) -> JwksCache:
    """The app's (per-process) key-set cache, created on first use."""
    cache = getattr(request.app.state, "cds_jwks_cache", None)
    if not isinstance(cache, JwksCache):
        cache = JwksCache()
        request.app.state.cds_jwks_cache = cache
    return cache


# --- the registered client --------------------------------------------------------------------


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
        raise _refuse(
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
            raise _refuse(
                "jwks_unavailable",
                "The client's key set could not be fetched from its 'jku' URL",
                issuer=client.issuer,
            ) from None
        if found:
            return found
    raise _refuse(
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
        raise _refuse("issuer_unknown", "The issuer ('iss') is not a registered CDS client")
    if not client.enabled:
        raise _refuse("client_disabled", "The CDS client is disabled", issuer=issuer)
    if not client.tenant_active:
        raise _refuse("tenant_disabled", "The CDS client's tenant is disabled", issuer=issuer)
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


async def get_cds_client(request: Request, resources: ResourcesDep) -> CdsClientIdentity:
    """FastAPI dependency: the CDS client whose JWT authenticates this call (else 401)."""
    identity = await authenticate_cds_client(
        authorization=request.headers.get("authorization"),
        path=request.url.path,
        resources=resources,
        cache=jwks_cache_for(request),
    )
    request.state.cds_client = identity
    return identity


setattr(get_cds_client, PERMISSION_ATTRIBUTE, CDS_CLIENT_JWT)

CdsClientDep = Annotated[CdsClientIdentity, Depends(get_cds_client)]
