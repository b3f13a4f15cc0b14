"""A CDS client's JWT, the parts that need no server: its shape, header, signature and claims.

In order (steps 1, 2, 5 and 6 of :mod:`ehr.modules.cds_hooks.client_auth`): ``Authorization:
Bearer`` + a compact JWT of at most :data:`MAX_TOKEN_LENGTH` chars; an accepted asymmetric
``alg`` with a ``kid`` and no ``crit``; a signature by one of the client's keys fitting ``alg``
(python-jose; PS* with ``cryptography``); the claims ``iss``, ``aud`` (exactly
``{public_base}{request path}``), ``exp``, ``iat``, ``jti`` within the clock skew and lifetime.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers
from jose import JWSError, JWTError, jwk, jws, jwt

from ehr.core.config import CdsHooksSettings, Settings
from ehr.modules.cds_hooks.client_auth.refusals import refuse
from ehr.platform.auth.client_keys import (
    ASYMMETRIC_ALGORITHMS,
    MAX_KID_LENGTH,
    b64_decode,
    b64_int,
    jwk_problem,
)

__all__ = [
    "MAX_TOKEN_LENGTH",
    "TokenHeader",
    "VerifiedClaims",
    "accepted_algorithms",
    "bearer_token",
    "check_claims",
    "expected_audience",
    "public_base_url",
    "read_header",
    "unverified_issuer",
    "verify_signature",
]

MAX_TOKEN_LENGTH: Final = 8192
_MAX_JTI_LENGTH: Final = 255
_MAX_ISSUER_LENGTH: Final = 255
_MAX_JKU_LENGTH: Final = 2048
_TOKEN_PATTERN: Final = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_PRINTABLE_ALG: Final = re.compile(r"^[A-Za-z0-9+_-]{1,16}$")
_PSS_HASHES: Final[Mapping[str, Callable[[], hashes.HashAlgorithm]]] = {
    "PS256": hashes.SHA256,
    "PS384": hashes.SHA384,
    "PS512": hashes.SHA512,
}


def bearer_token(authorization: str | None) -> str:
    """The compact JWT of an ``Authorization: Bearer`` header (structure checked only)."""
    if authorization is None or not authorization.strip():
        raise refuse(
            "missing_credentials",
            "No credentials: send 'Authorization: Bearer <JWT>' signed by a registered CDS client",
        )
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise refuse("malformed_authorization", "Use 'Authorization: Bearer <JWT>'")
    if len(token) > MAX_TOKEN_LENGTH or not _TOKEN_PATTERN.fullmatch(token):
        raise refuse("malformed_token", "The bearer token is not a well-formed compact JWT")
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
        raise refuse("malformed_token", "The JWT header cannot be decoded") from None
    if not isinstance(header, dict):
        raise refuse("malformed_token", "The JWT header is not a JSON object")
    alg = header.get("alg")
    accepted = accepted_algorithms(settings)
    if not isinstance(alg, str) or alg not in accepted:
        shown = alg if isinstance(alg, str) and _PRINTABLE_ALG.fullmatch(alg) else "?"
        raise refuse(
            "algorithm_not_allowed",
            f"The JWT algorithm '{shown}' is not accepted (unsigned and HMAC tokens never are); "
            f"use one of {', '.join(sorted(accepted))}",
        )
    if "crit" in header:
        raise refuse("critical_header", "The JWT header's 'crit' extensions are not supported")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
        raise refuse("malformed_token", "The JWT header's 'typ' must be 'JWT'")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
        raise refuse("kid_missing", "The JWT header must name the signing key ('kid')")
    jku = header.get("jku")
    if jku is not None and (not isinstance(jku, str) or not jku or len(jku) > _MAX_JKU_LENGTH):
        raise refuse("malformed_token", "The JWT header's 'jku' is not a URL")
    return TokenHeader(alg=alg, kid=kid, jku=jku)


def unverified_issuer(token: str) -> str:
    try:
        claims = jwt.get_unverified_claims(token)
    except (JWTError, JWSError, ValueError, TypeError):
        raise refuse("malformed_token", "The JWT payload cannot be decoded") from None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    if not isinstance(issuer, str) or not issuer or len(issuer) > _MAX_ISSUER_LENGTH:
        raise refuse("claim_missing", "The JWT has no valid 'iss' claim")
    return issuer


def public_base_url(settings: Settings) -> str:
    """The origin CDS clients call us at (``cds_hooks.public_base_url`` or the gateway's)."""
    base = settings.cds_hooks.public_base_url or settings.gateway.public_base_url
    return base.rstrip("/")


def expected_audience(settings: Settings, path: str) -> str:
    """The one ``aud`` accepted for a call to ``path``: ``{public_base}{path}``."""
    return f"{public_base_url(settings)}{path}"


def _fits(key: Mapping[str, Any], alg: str) -> bool:
    kty, crv = ASYMMETRIC_ALGORITHMS[alg]
    if key.get("kty") != kty or (crv is not None and key.get("crv") != crv):
        return False
    key_alg = key.get("alg")
    return key_alg is None or key_alg == alg


def _verify_pss(token: str, key: Mapping[str, Any], alg: str) -> bool:
    signing_input, _, signature = token.rpartition(".")
    try:
        public_key = RSAPublicNumbers(b64_int(key["e"]), b64_int(key["n"])).public_key()
        digest = _PSS_HASHES[alg]()
        public_key.verify(
            b64_decode(signature),
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
        raise refuse("algorithm_not_allowed", "The JWT algorithm is not accepted")
    candidates = [
        key
        for key in keys
        if key.get("kid") == header.kid and jwk_problem(key) is None and _fits(key, header.alg)
    ]
    if not candidates:
        raise refuse(
            "key_unsuitable",
            f"The key named by 'kid' cannot verify {header.alg} signatures (key type or curve)",
        )
    payload: bytes | None = None
    for key in candidates:
        if header.alg in _PSS_HASHES:
            if _verify_pss(token, key, header.alg):
                payload = b64_decode(token.split(".")[1])
                break
            continue
        try:
            verified = jws.verify(token, jwk.construct(dict(key), header.alg), [header.alg])
        except (JWSError, JWTError, ValueError, TypeError):
            continue
        payload = verified if isinstance(verified, bytes) else None
        break
    if payload is None:
        raise refuse("bad_signature", "The JWT signature does not verify with the client's key")
    try:
        claims = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise refuse("malformed_token", "The JWT payload is not JSON") from None
    if not isinstance(claims, dict):
        raise refuse("malformed_token", "The JWT payload is not a JSON object")
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
        raise refuse("claim_missing", f"The JWT has no valid '{name}' claim (NumericDate)")
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
        raise refuse("claim_missing", "The JWT has no valid 'iss' claim", issuer=issuer)
    if "aud" not in claims:
        raise refuse("claim_missing", "The JWT has no 'aud' claim", issuer=issuer)
    expires_at = _numeric(claims, "exp")
    issued_at = _numeric(claims, "iat")
    not_before = _numeric(claims, "nbf") if claims.get("nbf") is not None else None
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI_LENGTH:
        raise refuse("claim_missing", "The JWT has no valid 'jti' claim", issuer=issuer)
    skew = settings.clock_skew_seconds
    if now > expires_at + skew:
        raise refuse("expired", "The JWT has expired ('exp')", issuer=issuer)
    if issued_at > now + skew:
        raise refuse("issued_in_future", "The JWT's 'iat' is in the future", issuer=issuer)
    if not_before is not None and not_before > now + skew:
        raise refuse("not_yet_valid", "The JWT is not valid yet ('nbf')", issuer=issuer)
    if expires_at < issued_at:
        raise refuse("claim_missing", "The JWT's 'exp' is before its 'iat'", issuer=issuer)
    if expires_at - issued_at > settings.max_token_lifetime_seconds:
        raise refuse(
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
        raise refuse(
            "audience_mismatch",
            f"The JWT's 'aud' must be exactly the URL called: {audience}",
            issuer=issuer,
        )
    return VerifiedClaims(issuer=issuer, jti=jti, issued_at=issued_at, expires_at=expires_at)
