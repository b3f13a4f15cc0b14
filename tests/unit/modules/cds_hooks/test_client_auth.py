"""CDS client authentication, the parts that need no server: header, keys, signature, claims,
audience, replay, the key-set cache, JWKS registration checks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from support.cds import (
    CdsClientKey,
    b64url,
    hmac_token,
    mint_cds_token,
    new_client_key,
    sign_compact,
    unsigned_token,
)

from ehr.core.config import CdsHooksSettings, Settings
from ehr.core.errors import DependencyUnavailable
from ehr.modules.cds_hooks.client_auth import (
    CDS_CLIENT_JWT,
    CdsClientUnauthorized,
    JwksCache,
    JwksFetchError,
    TokenHeader,
    VerifiedClaims,
    accepted_algorithms,
    bearer_token,
    check_claims,
    expected_audience,
    get_cds_client,
    jwk_problem,
    read_header,
    record_jti,
    replay_key,
    usable_keys,
    verify_signature,
)
from ehr.modules.cds_hooks.clients import InvalidCdsClient, validate_jwks, validate_url
from ehr.platform.auth.authorization import PERMISSION_ATTRIBUTE

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "cdshooks"
SPEC_TOKEN = (FIXTURES / "spec__L1090__example-jwt-ES384.txt").read_text().strip()
SPEC_JWKS = json.loads((FIXTURES / "spec__L1058__example.json").read_text())
SPEC_AUD = "https://cds.example.org/cds-services/some-service"
SPEC_ISS = "https://fhir-ehr.example.com/"

ISS = "https://ehr.example.test/"
AUD = "https://cds.example.test/cds-services/order-sign"
NOW = 1_800_000_000.0
CDS = CdsHooksSettings()


@pytest.fixture(scope="module")
def es384() -> CdsClientKey:
    return new_client_key("ES384", kid="es384-1")


def reason_of(excinfo: pytest.ExceptionInfo[CdsClientUnauthorized]) -> str:
    return excinfo.value.reason


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "iat": int(NOW),
        "exp": int(NOW) + 60,
        "jti": "jti-1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def check(values: dict[str, Any], *, now: float = NOW, settings: CdsHooksSettings = CDS) -> Any:
    return check_claims(values, issuer=ISS, audience=AUD, settings=settings, now=now)


# --- Authorization header -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing_credentials"),
        ("   ", "missing_credentials"),
        ("Basic dXNlcjpwdw==", "malformed_authorization"),
        ("Bearer", "malformed_authorization"),
        ("Bearer not-a-jwt", "malformed_token"),
        ("Bearer a.b.c.d", "malformed_token"),
        ("Bearer a.b$.c", "malformed_token"),
        ("Bearer " + "a" * 5000 + "." + "b" * 5000 + ".c", "malformed_token"),
    ],
)
def test_bearer_header_is_checked(header: str | None, reason: str) -> None:
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        bearer_token(header)
    assert reason_of(excinfo) == reason
    assert excinfo.value.status_code == 401
    assert excinfo.value.code == "cds_client_unauthorized"
    assert excinfo.value.headers["WWW-Authenticate"].startswith("Bearer ")


def test_bearer_scheme_is_case_insensitive(es384: CdsClientKey) -> None:
    token = mint_cds_token(es384, issuer=ISS, audience=AUD)
    assert bearer_token(f"bearer {token}") == token


# --- JOSE header: algorithms ----------------------------------------------------------------


def test_alg_none_is_refused() -> None:
    token = unsigned_token(claims())
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        read_header(bearer_token(f"Bearer {token}"), CDS)
    assert reason_of(excinfo) == "algorithm_not_allowed"


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_signed_with_the_public_key_pem_is_refused(es384: CdsClientKey, alg: str) -> None:
    """The algorithm-confusion attack: HMAC with the (public) verification key as secret."""
    token = hmac_token(es384.public_pem(), claims(), kid=es384.kid, alg=alg)
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        read_header(token, CDS)
    assert reason_of(excinfo) == "algorithm_not_allowed"
    # Even if the header check were skipped, no key could verify it: only asymmetric keys exist.
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        verify_signature(token, TokenHeader(alg=alg, kid=es384.kid, jku=None), es384.jwks()["keys"])
    assert reason_of(excinfo) == "algorithm_not_allowed"


def test_hmac_stays_refused_even_if_configured(es384: CdsClientKey) -> None:
    settings = CdsHooksSettings(algorithms=["HS256", "none", "ES384"])
    assert accepted_algorithms(settings) == {"ES384"}
    token = hmac_token(es384.public_pem(), claims(), kid=es384.kid)
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        read_header(token, settings)
    assert reason_of(excinfo) == "algorithm_not_allowed"
    with pytest.raises(CdsClientUnauthorized):
        read_header(unsigned_token(claims()), settings)


def test_an_algorithm_not_in_the_settings_is_refused() -> None:
    key = new_client_key("RS256")
    token = mint_cds_token(key, issuer=ISS, audience=AUD)
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        read_header(token, CdsHooksSettings(algorithms=["ES384"]))
    assert reason_of(excinfo) == "algorithm_not_allowed"
    assert "ES384" in excinfo.value.detail


def test_header_needs_a_kid_and_no_crit(es384: CdsClientKey) -> None:
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        read_header(mint_cds_token(es384, issuer=ISS, audience=AUD, omit=("kid",)), CDS)
    assert reason_of(excinfo) == "kid_missing"
    crit = mint_cds_token(es384, issuer=ISS, audience=AUD, extra_header={"crit": ["exp"], "exp": 1})
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        read_header(crit, CDS)
    assert reason_of(excinfo) == "critical_header"
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        read_header(mint_cds_token(es384, issuer=ISS, audience=AUD, jku=""), CDS)
    assert reason_of(excinfo) == "malformed_token"


def test_header_is_read(es384: CdsClientKey) -> None:
    token = mint_cds_token(es384, issuer=ISS, audience=AUD, jku="https://ehr.example.test/jwks")
    assert read_header(token, CDS) == TokenHeader(
        alg="ES384", kid=es384.kid, jku="https://ehr.example.test/jwks"
    )


def test_a_garbage_header_is_malformed() -> None:
    token = f"{b64url(b'not json')}.{b64url(b'{}')}.c2ln"
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        read_header(token, CDS)
    assert reason_of(excinfo) == "malformed_token"


# --- signatures -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "alg", ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
)
def test_every_accepted_algorithm_verifies(alg: str) -> None:
    key = new_client_key(alg)
    token = mint_cds_token(key, issuer=ISS, audience=AUD, jti=f"jti-{alg}")
    header = read_header(token, CDS)
    assert verify_signature(token, header, key.jwks()["keys"])["jti"] == f"jti-{alg}"
    other = new_client_key(alg, kid=key.kid)  # same kid, another key: bad signature
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        verify_signature(token, header, other.jwks()["keys"])
    assert reason_of(excinfo) == "bad_signature"


def test_a_tampered_payload_does_not_verify(es384: CdsClientKey) -> None:
    token = mint_cds_token(es384, issuer=ISS, audience=AUD)
    head, _, signature = token.split(".")
    forged = f"{head}.{b64url(json.dumps(claims(aud='https://evil.example/')).encode())}"
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        verify_signature(f"{forged}.{signature}", read_header(token, CDS), es384.jwks()["keys"])
    assert reason_of(excinfo) == "bad_signature"


@pytest.mark.parametrize(
    ("signer", "header_alg"),
    [("ES384", "ES256"), ("ES256", "ES384"), ("ES384", "RS384"), ("RS256", "ES256")],
)
def test_the_key_must_fit_the_algorithm(signer: str, header_alg: str) -> None:
    key = new_client_key(signer)
    jwk = key.public_jwk(include_alg=False)
    token = sign_compact(key, {"alg": header_alg, "typ": "JWT", "kid": key.kid}, claims())
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        verify_signature(token, read_header(token, CDS), [jwk])
    assert reason_of(excinfo) == "key_unsuitable"


def test_a_key_pinned_to_another_alg_is_not_used() -> None:
    key = new_client_key("RS256")
    token = sign_compact(key, {"alg": "RS256", "typ": "JWT", "kid": key.kid}, claims())
    pinned = {**key.public_jwk(), "alg": "PS256"}
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        verify_signature(token, read_header(token, CDS), [pinned])
    assert reason_of(excinfo) == "key_unsuitable"


def test_private_and_symmetric_keys_are_never_used(es384: CdsClientKey) -> None:
    token = mint_cds_token(es384, issuer=ISS, audience=AUD)
    header = read_header(token, CDS)
    with_private = {**es384.public_jwk(), "d": "AAAA"}
    symmetric = {"kty": "oct", "kid": es384.kid, "k": b64url(es384.public_pem())}
    for keys in ([with_private], [symmetric]):
        with pytest.raises(CdsClientUnauthorized) as excinfo:
            verify_signature(token, header, keys)
        assert reason_of(excinfo) == "key_unsuitable"


# --- the spec's own example (CDS Hooks 2.0.1, index.md L1090 + the JWKS at L1058) ------------


def test_the_spec_example_verifies_but_is_expired() -> None:
    header = read_header(SPEC_TOKEN, CDS)
    assert header == TokenHeader(
        alg="ES384", kid="example-kid", jku="https://fhir-ehr.example.com/jwk_uri"
    )
    verified = verify_signature(SPEC_TOKEN, header, usable_keys(SPEC_JWKS))
    assert verified["aud"] == SPEC_AUD
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        check_claims(verified, issuer=SPEC_ISS, audience=SPEC_AUD, settings=CDS, now=NOW)
    assert reason_of(excinfo) == "expired"
    assert SPEC_TOKEN not in excinfo.value.detail


# --- claims ---------------------------------------------------------------------------------


def test_valid_claims_pass() -> None:
    assert check(claims()) == VerifiedClaims(
        issuer=ISS, jti="jti-1", issued_at=NOW, expires_at=NOW + 60
    )


@pytest.mark.parametrize("missing", ["aud", "exp", "iat", "jti"])
def test_required_claims(missing: str) -> None:
    values = claims()
    del values[missing]
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        check(values)
    assert reason_of(excinfo) == "claim_missing"
    assert missing in excinfo.value.detail


@pytest.mark.parametrize(
    "bad",
    [{"exp": "soon"}, {"iat": True}, {"jti": ""}, {"jti": 7}, {"iss": "https://other/"}],
)
def test_mistyped_claims(bad: dict[str, Any]) -> None:
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        check(claims(**bad))
    assert reason_of(excinfo) == "claim_missing"


def test_audience_must_be_the_exact_url_called() -> None:
    assert check(claims(aud=[AUD, "https://other.example/"])).jti == "jti-1"
    for aud in (
        AUD + "/",
        AUD.upper(),
        "https://cds.example.test/cds-services",
        "https://cds.example.test/cds-services/order-sign/feedback",
        "http://cds.example.test/cds-services/order-sign",
        ["https://other.example/"],
        [],
        {"url": AUD},
    ):
        with pytest.raises(CdsClientUnauthorized) as excinfo:
            check(claims(aud=aud))
        assert reason_of(excinfo) == "audience_mismatch"
        assert AUD in excinfo.value.detail


def test_expiry_with_clock_skew() -> None:
    skew = CDS.clock_skew_seconds
    exp = NOW + 60
    assert check(claims(), now=exp + skew).jti == "jti-1"
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        check(claims(), now=exp + skew + 1)
    assert reason_of(excinfo) == "expired"


def test_issued_in_the_future_with_clock_skew() -> None:
    skew = CDS.clock_skew_seconds
    assert check(claims(iat=NOW + skew, exp=NOW + skew + 60)).jti == "jti-1"
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        check(claims(iat=NOW + skew + 1, exp=NOW + skew + 61))
    assert reason_of(excinfo) == "issued_in_future"


def test_not_before() -> None:
    skew = CDS.clock_skew_seconds
    assert check(claims(nbf=NOW + skew)).jti == "jti-1"
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        check(claims(nbf=NOW + skew + 1))
    assert reason_of(excinfo) == "not_yet_valid"


def test_lifetime_is_bounded() -> None:
    longest = CDS.max_token_lifetime_seconds
    assert check(claims(exp=NOW + longest)).jti == "jti-1"
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        check(claims(exp=NOW + longest + 1))
    assert reason_of(excinfo) == "lifetime_too_long"
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        check(claims(iat=NOW, exp=NOW - 1), now=NOW - 2)
    assert reason_of(excinfo) == "claim_missing"


def test_strict_skew_zero() -> None:
    strict = CdsHooksSettings(clock_skew_seconds=0)
    with pytest.raises(CdsClientUnauthorized):
        check(claims(), now=NOW + 61, settings=strict)
    with pytest.raises(CdsClientUnauthorized):
        check(claims(iat=NOW + 1, exp=NOW + 61), settings=strict)


# --- audience -------------------------------------------------------------------------------


def test_expected_audience_uses_the_cds_or_gateway_base() -> None:
    settings = Settings()
    settings.gateway.public_base_url = "https://ehr.example.test/"
    settings.cds_hooks.public_base_url = ""
    assert expected_audience(settings, "/cds-services") == "https://ehr.example.test/cds-services"
    settings.cds_hooks.public_base_url = "https://cds.example.test//"
    assert (
        expected_audience(settings, "/cds-services/order-sign/feedback")
        == "https://cds.example.test/cds-services/order-sign/feedback"
    )


# --- keys -----------------------------------------------------------------------------------


def test_jwk_problems(es384: CdsClientKey) -> None:
    good = es384.public_jwk()
    assert jwk_problem(good) is None
    assert jwk_problem(new_client_key("RS256").public_jwk()) is None
    small_rsa = {**new_client_key("RS256").public_jwk(), "n": b64url(b"\x01" * 128)}
    cases = {
        "private": {**good, "d": "AAAA"},
        "oct": {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
        "okp": {"kty": "OKP", "crv": "Ed25519", "kid": "e", "x": "AAAA"},
        "no kid": {k: v for k, v in good.items() if k != "kid"},
        "enc": {**good, "use": "enc"},
        "ops": {**good, "key_ops": ["encrypt"]},
        "alg mismatch": {**good, "alg": "RS256"},
        "curve mismatch": {**good, "alg": "ES256"},
        "bad curve": {**good, "crv": "secp256k1", "alg": None},
        "small rsa": small_rsa,
        "garbage": {**good, "x": "!!!"},
    }
    for label, key in cases.items():
        key = {k: v for k, v in key.items() if v is not None}
        assert jwk_problem(key) is not None, label
    assert jwk_problem("not a key") is not None


def test_usable_keys_filters(es384: CdsClientKey) -> None:
    jwks = {"keys": [es384.public_jwk(), {"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}
    assert usable_keys(jwks) == (es384.public_jwk(),)
    assert usable_keys(None) == ()
    assert usable_keys({"keys": "nope"}) == ()


def test_registration_validates_the_jwks(es384: CdsClientKey) -> None:
    assert validate_jwks(es384.jwks()) == es384.jwks()
    assert validate_jwks(SPEC_JWKS) == SPEC_JWKS
    for bad in (
        None,
        [],
        {"keys": []},
        {"keys": [{**es384.public_jwk(), "d": "AAAA"}]},
        {"keys": [es384.public_jwk(), es384.public_jwk()]},
        {"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]},
    ):
        with pytest.raises(InvalidCdsClient):
            validate_jwks(bad)


def test_registration_validates_urls() -> None:
    assert validate_url("https://ehr.example.test/jwks", what="jku") == (
        "https://ehr.example.test/jwks"
    )
    assert validate_url("http://127.0.0.1:8080/jwks", what="jku")
    assert validate_url("http://localhost/jwks", what="jku")
    for bad in (
        "http://ehr.example.test/jwks",
        "ftp://ehr.example.test/jwks",
        "/relative",
        "https://user:pw@ehr.example.test/jwks",
        "https://ehr.example.test/jwks#frag",
    ):
        with pytest.raises(InvalidCdsClient):
            validate_url(bad, what="jku")


# --- replay ---------------------------------------------------------------------------------


class FakeRedis:
    def __init__(self, *, fail: bool = False) -> None:
        self.values: dict[str, tuple[bytes, int]] = {}
        self.fail = fail

    async def set(self, key: str, value: bytes, *, nx: bool, ex: int) -> bool | None:
        if self.fail:
            raise RedisConnectionError("down")
        assert nx
        if key in self.values:
            return None
        self.values[key] = (value, ex)
        return True


async def test_a_jti_is_accepted_once() -> None:
    redis: Any = FakeRedis()
    verified = VerifiedClaims(issuer=ISS, jti="j1", issued_at=NOW, expires_at=NOW + 60)
    await record_jti(redis, verified, settings=CDS, now=NOW)
    ((key, (_, ttl)),) = redis.values.items()
    assert key == replay_key(ISS, "j1")
    assert ttl == 60 + CDS.clock_skew_seconds
    with pytest.raises(CdsClientUnauthorized) as excinfo:
        await record_jti(redis, verified, settings=CDS, now=NOW + 1)
    assert reason_of(excinfo) == "replayed"
    # Another issuer's identical jti is another token.
    other = VerifiedClaims(issuer="https://other/", jti="j1", issued_at=NOW, expires_at=NOW + 60)
    await record_jti(redis, other, settings=CDS, now=NOW)


async def test_the_replay_ttl_is_at_least_one_second() -> None:
    redis: Any = FakeRedis()
    verified = VerifiedClaims(issuer=ISS, jti="j2", issued_at=NOW - 90, expires_at=NOW - 30)
    await record_jti(redis, verified, settings=CdsHooksSettings(clock_skew_seconds=30), now=NOW)
    assert next(iter(redis.values.values()))[1] == 1


async def test_redis_down_fails_closed() -> None:
    redis: Any = FakeRedis(fail=True)
    verified = VerifiedClaims(issuer=ISS, jti="j3", issued_at=NOW, expires_at=NOW + 60)
    with pytest.raises(DependencyUnavailable):
        await record_jti(redis, verified, settings=CDS, now=NOW)


def test_replay_keys_are_namespaced_and_bounded() -> None:
    key = replay_key("https://a/", "x" * 255)
    assert key.startswith("ehr:cds:jti:")
    assert len(key) < 120
    assert replay_key("https://a/", "j") != replay_key("https://b/", "j")


# --- the key-set cache ----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Fetcher:
    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.keys = keys
        self.calls = 0
        self.fail = False

    async def __call__(self, url: str, settings: CdsHooksSettings) -> tuple[dict[str, Any], ...]:
        self.calls += 1
        await asyncio.sleep(0)
        if self.fail:
            raise JwksFetchError("boom")
        return tuple(self.keys)


CACHE_SETTINGS = CdsHooksSettings(jwks_cache_seconds=600, jwks_min_refresh_seconds=30)
URL = "https://ehr.example.test/jwks"


async def test_cache_reuses_then_expires() -> None:
    clock, fetch = Clock(), Fetcher([{"kid": "a"}])
    cache = JwksCache(fetch=fetch, clock=clock)
    assert await cache.keys(URL, "a", CACHE_SETTINGS) == ({"kid": "a"},)
    assert await cache.keys(URL, "a", CACHE_SETTINGS) == ({"kid": "a"},)
    assert fetch.calls == 1
    clock.now += 600
    assert await cache.keys(URL, "a", CACHE_SETTINGS) == ({"kid": "a"},)
    assert fetch.calls == 2


async def test_unknown_kid_refetches_at_most_once_per_interval() -> None:
    clock, fetch = Clock(), Fetcher([{"kid": "a"}])
    cache = JwksCache(fetch=fetch, clock=clock)
    await cache.keys(URL, "a", CACHE_SETTINGS)
    fetch.keys = [{"kid": "a"}, {"kid": "b"}]  # the client rotates
    assert await cache.keys(URL, "b", CACHE_SETTINGS) == ()
    assert await cache.keys(URL, "zzz", CACHE_SETTINGS) == ()
    assert fetch.calls == 1
    clock.now += 30
    assert await cache.keys(URL, "b", CACHE_SETTINGS) == ({"kid": "b"},)
    assert fetch.calls == 2
    assert await cache.keys(URL, "zzz", CACHE_SETTINGS) == ()
    assert fetch.calls == 2


async def test_concurrent_misses_fetch_once() -> None:
    fetch = Fetcher([{"kid": "a"}])
    cache = JwksCache(fetch=fetch, clock=Clock())
    results = await asyncio.gather(*(cache.keys(URL, "a", CACHE_SETTINGS) for _ in range(10)))
    assert all(result == ({"kid": "a"},) for result in results)
    assert fetch.calls == 1


async def test_a_failed_fetch_is_not_retried_at_once() -> None:
    clock, fetch = Clock(), Fetcher([{"kid": "a"}])
    fetch.fail = True
    cache = JwksCache(fetch=fetch, clock=clock)
    with pytest.raises(JwksFetchError):
        await cache.keys(URL, "a", CACHE_SETTINGS)
    with pytest.raises(JwksFetchError):
        await cache.keys(URL, "a", CACHE_SETTINGS)
    assert fetch.calls == 1
    fetch.fail = False
    clock.now += 30
    assert await cache.keys(URL, "a", CACHE_SETTINGS) == ({"kid": "a"},)


# --- the dependency -------------------------------------------------------------------------


def test_the_dependency_carries_the_access_marker() -> None:
    assert getattr(get_cds_client, PERMISSION_ATTRIBUTE) == CDS_CLIENT_JWT
