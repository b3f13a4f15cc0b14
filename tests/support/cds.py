"""CDS Hooks client tokens for tests (imported by name: ``from support.cds import ...``).

A CDS client signs a JWT on every call (CDS Hooks 2.0.1 "Trusting CDS Clients"). These helpers
make the keys and tokens, signing with ``cryptography`` directly (not with the library that
verifies them)::

    key = new_client_key("ES384")                      # kid generated; key.jwks() to register
    token = mint_cds_token(key, issuer=ISS, audience=f"{base}/cds-services/order-sign")
    await api.post("/cds-services/order-sign", json=body, headers=cds_bearer(token))
    headers = signed_headers(key, issuer=ISS, audience=...)  # the two steps in one

    # registered in PostgreSQL (needs an existing tenant row; remove with remove_cds_clients):
    await register_cds_client(sessionmaker, tenant_slug="t1", issuer=ISS, key=key)

Negative vectors: :func:`unsigned_token` (``alg: none``), :func:`hmac_token` (HS256, e.g. with
the public key's PEM as the secret: the algorithm-confusion attack). Every call of
:func:`mint_cds_token` uses a fresh ``jti`` unless one is given (a reused one is refused).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.db.models import CdsClient
from ehr.modules.cds_hooks.clients import register_client

__all__ = [
    "CdsClientKey",
    "b64url",
    "cds_bearer",
    "hmac_token",
    "mint_cds_token",
    "new_client_key",
    "register_cds_client",
    "remove_cds_clients",
    "sign_compact",
    "signed_headers",
    "unsigned_token",
]

_CURVES: dict[str, tuple[ec.EllipticCurve, str, int]] = {
    "ES256": (ec.SECP256R1(), "P-256", 32),
    "ES384": (ec.SECP384R1(), "P-384", 48),
    "ES512": (ec.SECP521R1(), "P-521", 66),
}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64(value: int, length: int | None = None) -> str:
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url(value.to_bytes(size, "big"))


@dataclass(frozen=True)
class CdsClientKey:
    """A client's signing key pair; ``alg`` is the algorithm tokens are signed with."""

    alg: str
    kid: str
    private_key: PrivateKey = field(repr=False)

    def public_jwk(self, *, include_alg: bool = True) -> dict[str, Any]:
        public = self.private_key.public_key()
        jwk: dict[str, Any]
        if isinstance(public, ec.EllipticCurvePublicKey):
            _, crv, size = _CURVES[self.alg]
            numbers = public.public_numbers()
            jwk = {
                "kty": "EC",
                "crv": crv,
                "x": _int_b64(numbers.x, size),
                "y": _int_b64(numbers.y, size),
            }
        else:
            assert isinstance(public, rsa.RSAPublicKey)
            rsa_numbers = public.public_numbers()
            jwk = {"kty": "RSA", "n": _int_b64(rsa_numbers.n), "e": _int_b64(rsa_numbers.e)}
        jwk.update({"kid": self.kid, "use": "sig"})
        if include_alg:
            jwk["alg"] = self.alg
        return jwk

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, signing_input: bytes) -> bytes:
        digest = _HASHES[self.alg[2:]]()
        if isinstance(self.private_key, ec.EllipticCurvePrivateKey):
            size = _CURVES[self.alg][2]
            r, s = decode_dss_signature(self.private_key.sign(signing_input, ec.ECDSA(digest)))
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if self.alg.startswith("PS"):
            pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
            return self.private_key.sign(signing_input, pss, digest)
        return self.private_key.sign(signing_input, padding.PKCS1v15(), digest)


def new_client_key(alg: str = "ES384", kid: str | None = None) -> CdsClientKey:
    """A fresh key pair for ``alg`` (ES256/384/512, RS256/384/512, PS256/384/512)."""
    private: PrivateKey
    if alg in _CURVES:
        private = ec.generate_private_key(_CURVES[alg][0])
    elif alg[:2] in ("RS", "PS") and alg[2:] in _HASHES:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise ValueError(f"unsupported algorithm {alg}")
    return CdsClientKey(alg=alg, kid=kid or f"k-{uuid.uuid4().hex[:12]}", private_key=private)


def _segment(value: Mapping[str, Any]) -> str:
    return b64url(json.dumps(dict(value), separators=(",", ":")).encode())


def sign_compact(key: CdsClientKey, header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    """A compact JWS of ``claims`` under ``header`` (sent as given), signed by ``key``."""
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode('ascii')))}"


def mint_cds_token(
    key: CdsClientKey,
    *,
    issuer: str,
    audience: str | list[str],
    lifetime: int = 60,
    jti: str | None = None,
    issued_at: float | None = None,
    expires_at: float | None = None,
    jku: str | None = None,
    kid: str | None = None,
    alg: str | None = None,
    extra_header: Mapping[str, Any] | None = None,
    extra_claims: Mapping[str, Any] | None = None,
    omit: Iterable[str] = (),
) -> str:
    """A client JWT: header ``{alg, typ: JWT, kid[, jku]}``, claims iss/aud/exp/iat/jti.

    ``omit`` drops claims or header members by name (e.g. ``omit=("jti", "kid")``).
    """
    now = int(time.time()) if issued_at is None else issued_at
    omitted = set(omit)
    header: dict[str, Any] = {"alg": alg or key.alg, "typ": "JWT", "kid": kid or key.kid}
    if jku is not None:
        header["jku"] = jku
    header.update(extra_header or {})
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "exp": now + lifetime if expires_at is None else expires_at,
        "iat": now,
        "jti": jti or str(uuid.uuid4()),
    }
    claims.update(extra_claims or {})
    header = {k: v for k, v in header.items() if k not in omitted}
    claims = {k: v for k, v in claims.items() if k not in omitted}
    return sign_compact(key, header, claims)


def unsigned_token(claims: Mapping[str, Any], *, kid: str = "k") -> str:
    """``alg: none`` (empty signature): must always be refused."""
    return f"{_segment({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_segment(claims)}."


def hmac_token(
    secret: bytes, claims: Mapping[str, Any], *, kid: str = "k", alg: str = "HS256"
) -> str:
    """An HMAC-signed token (e.g. ``secret=key.public_pem()``): must always be refused."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signing_input = f"{_segment({'alg': alg, 'typ': 'JWT', 'kid': kid})}.{_segment(claims)}"
    signature = hmac.new(secret, signing_input.encode("ascii"), digest).digest()
    return f"{signing_input}.{b64url(signature)}"


def cds_bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed_headers(
    key: CdsClientKey, *, issuer: str, audience: str | list[str], **token: Any
) -> dict[str, str]:
    """The ``Authorization`` header of one call signed by ``key`` (a fresh token, fresh ``jti``;
    ``token``: the other arguments of :func:`mint_cds_token`)."""
    return cds_bearer(mint_cds_token(key, issuer=issuer, audience=audience, **token))


async def register_cds_client(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    tenant_slug: str,
    issuer: str,
    key: CdsClientKey | None = None,
    name: str = "Test CDS client",
    jwks: Mapping[str, Any] | None = None,
    jku_allowlist: Iterable[str] = (),
    fhir_servers: Iterable[str] = (),
    first_party: bool = False,
) -> CdsClient:
    """Register a client (stored JWKS = ``jwks`` or ``key.jwks()``) in its own transaction."""
    stored = jwks if jwks is not None else (key.jwks() if key is not None else None)
    async with sessionmaker() as session, session.begin():
        return await register_client(
            session,
            tenant_slug=tenant_slug,
            issuer=issuer,
            name=name,
            jwks=stored,
            jku_allowlist=jku_allowlist,
            fhir_servers=fhir_servers,
            first_party=first_party,
        )


async def remove_cds_clients(
    sessionmaker: async_sessionmaker[AsyncSession], issuers: Iterable[str]
) -> None:
    wanted = list(issuers)
    if not wanted:
        return
    async with sessionmaker() as session, session.begin():
        await session.execute(delete(CdsClient).where(CdsClient.issuer.in_(wanted)))
