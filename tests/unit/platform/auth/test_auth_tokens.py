"""Access-token verification refuses everything but our own, current, well-formed ES256 tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt
from support.signing import new_es256_key

from ehr.core.config import Settings
from ehr.core.errors import AuthenticationRequired
from ehr.platform.auth.signing_keys import ActiveSigningKey
from ehr.platform.auth.tokens import (
    BearerChallenge,
    decode_access_token,
    decode_mfa_challenge,
    encode_access_token,
    encode_mfa_challenge,
)

SETTINGS = Settings()
USER_ID = uuid.uuid4()
TENANT_ID = uuid.uuid4()


def _make_key(kid: str) -> tuple[ActiveSigningKey, dict[str, Any], bytes]:
    key = new_es256_key(kid)
    return key.active, key.public_jwk, key.public_pem


KEY, PUBLIC_JWK, PUBLIC_PEM = _make_key("kid-1")
KEYS = {"kid-1": PUBLIC_JWK}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": SETTINGS.auth.issuer,
        "aud": SETTINGS.auth.audience,
        "sub": str(USER_ID),
        "tid": str(TENANT_ID),
        "tenant": "acme",
        "roles": ["physician"],
        "scope": "openid user/Patient.rs",
        "jti": "jti-1",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "token_use": "access",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(claims: dict[str, Any], *, kid: str = "kid-1", key: ActiveSigningKey = KEY) -> str:
    return str(
        jwt.encode(claims, key.private_pem.decode(), algorithm="ES256", headers={"kid": kid})
    )


def _refused(token: str) -> AuthenticationRequired:
    with pytest.raises(AuthenticationRequired) as info:
        decode_access_token(token, KEYS, SETTINGS)
    assert info.value.status_code == 401
    return info.value


def test_a_token_we_issued_verifies_with_all_claims() -> None:
    issued = encode_access_token(
        KEY,
        SETTINGS,
        subject=USER_ID,
        tenant_id=TENANT_ID,
        tenant="acme",
        roles=["nurse", "physician"],
        session_id=uuid.uuid4(),
    )
    claims = decode_access_token(issued.token, KEYS, SETTINGS)
    assert claims.subject == USER_ID
    assert claims.tenant_id == TENANT_ID
    assert claims.tenant == "acme"
    assert claims.roles == {"nurse", "physician"}
    assert "user/Patient.rs" in claims.scopes
    assert claims.jti == issued.jti
    assert claims.kid == "kid-1"
    assert issued.expires_in == SETTINGS.auth.access_token_ttl_seconds
    assert issued.token not in repr(issued)
    header = jwt.get_unverified_header(issued.token)
    assert header["alg"] == "ES256"
    assert header["kid"] == "kid-1"


def test_alg_none_is_refused() -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "kid-1"}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    _refused(f"{header}.{payload}.")
    _refused(f"{header}.{payload}.{_b64(b'x')}")


def test_hs256_signed_with_the_public_key_as_secret_is_refused() -> None:
    # The classic algorithm-confusion attack: HMAC keyed with our published public key.
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "kid-1"}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    for secret in (PUBLIC_PEM, json.dumps(PUBLIC_JWK).encode()):
        signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        _refused(f"{header}.{payload}.{_b64(signature)}")


def test_other_asymmetric_algorithms_are_refused() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    _refused(jwt.encode(_claims(), pem, algorithm="RS256", headers={"kid": "kid-1"}))


def test_unknown_or_missing_kid_is_refused() -> None:
    _refused(_sign(_claims(), kid="kid-unknown"))
    token = jwt.encode(_claims(), KEY.private_pem.decode(), algorithm="ES256")
    _refused(token)


def test_a_key_of_ours_under_another_kid_is_refused() -> None:
    other_key, _, _ = _make_key("kid-1")  # same kid, different (attacker's) key
    _refused(_sign(_claims(), key=other_key))


def test_wrong_issuer_or_audience_is_refused() -> None:
    _refused(_sign(_claims(iss="urn:someone:else")))
    _refused(_sign(_claims(aud="urn:other:api")))
    _refused(_sign(_claims(aud=f"{SETTINGS.auth.audience}:mfa")))


def test_expired_token_is_refused_with_its_own_message() -> None:
    past = datetime.now(UTC) - timedelta(minutes=10)
    error = _refused(_sign(_claims(iat=int(past.timestamp()), exp=int(past.timestamp()) + 60)))
    assert "expired" in error.detail


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "jti", "iss", "aud", "tid", "tenant"])
def test_missing_claims_are_refused(missing: str) -> None:
    claims = _claims()
    del claims[missing]
    _refused(_sign(claims))


@pytest.mark.parametrize(
    "override",
    [
        {"sub": "not-a-uuid"},
        {"tid": 42},
        {"roles": "physician"},
        {"scope": ["user/Patient.rs"]},
        {"token_use": "mfa"},
        {"exp": "tomorrow"},
    ],
)
def test_mistyped_claims_are_refused(override: dict[str, Any]) -> None:
    _refused(_sign(_claims(**override)))


def test_tampered_payload_or_signature_is_refused() -> None:
    token = _sign(_claims())
    header, payload, signature = token.split(".")
    forged = _b64(json.dumps(_claims(roles=["admin"])).encode())
    _refused(f"{header}.{forged}.{signature}")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    _refused(f"{header}.{payload}.{flipped}")


@pytest.mark.parametrize(
    "token", ["", "abc", "a.b", "a.b.c.d", "....", "é.é.é", "x" * 10_000, "Bearer x.y.z"]
)
def test_malformed_tokens_are_refused(token: str) -> None:
    _refused(token)


def test_refusals_carry_a_bearer_challenge_header() -> None:
    error = _refused("abc")
    assert isinstance(error, BearerChallenge)
    assert error.headers["WWW-Authenticate"].startswith("Bearer")


def test_mfa_challenge_and_access_token_are_not_interchangeable() -> None:
    challenge = encode_mfa_challenge(KEY, SETTINGS, user_id=USER_ID, tenant_id=TENANT_ID)
    _refused(challenge)
    decoded = decode_mfa_challenge(challenge, KEYS, SETTINGS)
    assert decoded.user_id == USER_ID
    access = _sign(_claims())
    with pytest.raises(AuthenticationRequired):
        decode_mfa_challenge(access, KEYS, SETTINGS)


def test_jose_jwk_round_trip_of_our_public_key() -> None:
    # Our published JWK is a valid EC key for the library that verifies it.
    assert jwk.construct(PUBLIC_JWK, algorithm="ES256").to_dict()["crv"] == "P-256"
