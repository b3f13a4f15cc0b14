"""SMART Backend Services against the real stack: a registered client gets a token with
``client_credentials`` and a signed assertion — through a real OAuth client library (authlib) —
and reads its tenant's data on /fhir with the granted system/ scopes; every bad assertion is
refused with ``invalid_client`` and nothing is issued; the token is bound to the tenant."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk, jwt
from sqlalchemy import select
from support.in_process import BASE_URL, client_of, started
from support.tenant_world import World, open_world
from typer.testing import CliRunner

from ehr.core.config import Settings
from ehr.core.db.models import AuditRecord
from ehr.entrypoints.api import create_app
from ehr.entrypoints.cli import app as cli
from ehr.platform.smart import disable_client, register_backend_service

TOKEN_URL = f"{BASE_URL}/oauth2/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPES = ["system/Observation.rs", "system/Patient.rs"]
# This run's own client address: its refusals count against their own throttle window.
PEER = (f"10.77.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}", 40000)


@dataclass(frozen=True)
class Signer:
    kid: str
    alg: str
    private_pem: str
    public_jwk: dict[str, Any]


def _signer(alg: str) -> Signer:
    if alg.startswith("RS"):
        private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ec.generate_private_key(ec.SECP384R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    kid = f"k-{uuid.uuid4().hex[:8]}"
    public = {**jwk.construct(public_pem, alg).to_dict(), "kid": kid, "alg": alg, "use": "sig"}
    return Signer(kid=kid, alg=alg, private_pem=pem, public_jwk=public)


@dataclass(frozen=True)
class Registered:
    client_id: str
    rsa: Signer
    ec: Signer


@pytest.fixture(scope="module")
async def world(settings: Settings, run_id: str) -> AsyncIterator[World]:
    async with open_world(settings, f"{run_id}-smart", ("sm",)) as opened:
        yield opened


@pytest.fixture(scope="module")
async def client(world: World) -> Registered:
    rsa_key, ec_key = _signer("RS384"), _signer("ES384")
    async with world.sessionmaker() as session, session.begin():
        made = await register_backend_service(
            session,
            tenant=world.tenants["sm"].slug,
            name="population health export",
            jwks={"keys": [rsa_key.public_jwk, ec_key.public_jwk]},
            scopes=SCOPES,
        )
    return Registered(client_id=made.client_id, rsa=rsa_key, ec=ec_key)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    gateway = settings.gateway.model_copy(update={"public_base_url": BASE_URL})
    async with started(create_app(settings.model_copy(update={"gateway": gateway}))) as running:
        yield running


def assertion(
    registered: Registered,
    signer: Signer,
    *,
    lifetime: int = 240,
    **overrides: Any,
) -> str:
    now = int(time.time())
    claims = {
        "iss": registered.client_id,
        "sub": registered.client_id,
        "aud": TOKEN_URL,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
        **overrides,
    }
    return str(
        jwt.encode(claims, signer.private_pem, algorithm=signer.alg, headers={"kid": signer.kid})
    )


def form(signed: str, scope: str = " ".join(SCOPES), **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
        "scope": scope,
        **extra,
    }


async def test_a_real_oauth_client_gets_a_token_and_reads_its_tenant(
    app: Any, client: Registered, world: World
) -> None:
    oauth = AsyncOAuth2Client(
        client_id=client.client_id,
        client_secret=client.rsa.private_pem,
        # authlib's default assertion lives an hour; SMART allows at most five minutes.
        token_endpoint_auth_method=PrivateKeyJWT(
            TOKEN_URL,
            alg="RS384",
            headers={"kid": client.rsa.kid},
            claims={"exp": int(time.time()) + 240},
        ),
        scope=" ".join(SCOPES),
        transport=httpx.ASGITransport(app=app),
    )
    async with oauth:
        token = await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials")
    assert token["token_type"].lower() == "bearer"
    assert set(token["scope"].split()) == set(SCOPES)
    assert 0 < token["expires_in"] <= 300
    tenant = world.tenants["sm"]
    async with client_of(app, peer=PEER) as api:
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        patient = await api.get(f"/fhir/Patient/{tenant.patient['id']}", headers=headers)
        assert patient.status_code == 200, patient.text
        assert patient.json()["id"] == tenant.patient["id"]
        denied = await api.get("/fhir/Condition", headers=headers)
        assert denied.status_code == 403
        assert denied.headers["content-type"].startswith("application/fhir+json")


async def test_an_es384_assertion_is_accepted_and_the_answer_is_not_cached(
    app: Any, client: Registered
) -> None:
    async with client_of(app, peer=PEER) as api:
        answer = await api.post("/oauth2/token", data=form(assertion(client, client.ec)))
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}


async def test_only_the_clients_scopes_are_granted(app: Any, client: Registered) -> None:
    async with client_of(app, peer=PEER) as api:
        wider = form(assertion(client, client.rsa), "system/Patient.rs system/*.cruds")
        narrowed = await api.post("/oauth2/token", data=wider)
        assert narrowed.status_code == 200
        assert narrowed.json()["scope"] == "system/Patient.rs"
        outside = form(assertion(client, client.rsa), "system/Condition.rs")
        refused = await api.post("/oauth2/token", data=outside)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope"


async def test_a_registered_wildcard_grants_a_narrower_scope(
    app: Any, client: Registered, world: World
) -> None:
    async with world.sessionmaker() as session, session.begin():
        made = await register_backend_service(
            session,
            tenant=world.tenants["sm"].slug,
            name="wildcard reader",
            jwks={"keys": [client.rsa.public_jwk]},
            scopes=["system/*.rs"],
        )
    wildcard = Registered(client_id=made.client_id, rsa=client.rsa, ec=client.ec)
    async with client_of(app, peer=PEER) as api:
        narrow = await api.post(
            "/oauth2/token", data=form(assertion(wildcard, wildcard.rsa), "system/Observation.rs")
        )
        wider = await api.post(
            "/oauth2/token", data=form(assertion(wildcard, wildcard.rsa), "system/*.cruds")
        )
    assert narrow.status_code == 200, narrow.text
    assert narrow.json()["scope"] == "system/Observation.rs"
    assert wider.status_code == 400
    assert wider.json()["error"] == "invalid_scope"


def _hs256(registered: Registered) -> str:
    now = int(time.time())
    claims = {"iss": registered.client_id, "sub": registered.client_id, "aud": TOKEN_URL,
              "exp": now + 60, "jti": uuid.uuid4().hex}  # fmt: skip
    return str(jwt.encode(claims, "shared-secret", algorithm="HS256", headers={"kid": "k"}))


def _unsigned(registered: Registered) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"iss": registered.client_id, "sub": registered.client_id, "aud": TOKEN_URL,
              "exp": int(time.time()) + 60, "jti": uuid.uuid4().hex}  # fmt: skip
    return f"{part({'alg': 'none', 'kid': registered.rsa.kid})}.{part(claims)}."


BAD_ASSERTIONS = {
    "alg none": lambda c: _unsigned(c),
    "HMAC": lambda c: _hs256(c),
    "RS256 (not RS384/ES384)": lambda c: str(jwt.encode(
        {"iss": c.client_id, "sub": c.client_id, "aud": TOKEN_URL,
         "exp": int(time.time()) + 60, "jti": uuid.uuid4().hex},
        c.rsa.private_pem, algorithm="RS256", headers={"kid": c.rsa.kid})),
    "an unregistered key": lambda c: assertion(c, _signer("RS384")),
    "a registered kid, another key": lambda c: assertion(
        c, Signer(c.rsa.kid, "RS384", _signer("RS384").private_pem, {})),
    "wrong audience": lambda c: assertion(c, c.rsa, aud=f"{BASE_URL}/other"),
    "expired": lambda c: assertion(c, c.rsa, lifetime=-120),
    "exp beyond five minutes": lambda c: assertion(c, c.rsa, lifetime=3600),
    "sub is not the client": lambda c: assertion(c, c.rsa, sub="someone-else"),
    "unknown client": lambda c: assertion(
        Registered("no-such-client", c.rsa, c.ec), c.rsa),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_ASSERTIONS), ids=list(BAD_ASSERTIONS))
async def test_a_bad_assertion_is_invalid_client_and_nothing_is_issued(
    app: Any, client: Registered, case: str
) -> None:
    async with client_of(app, peer=PEER) as api:
        answer = await api.post("/oauth2/token", data=form(BAD_ASSERTIONS[case](client)))
    assert answer.status_code == 401, (case, answer.text)
    assert answer.json()["error"] == "invalid_client"
    assert "access_token" not in answer.text


async def test_a_replayed_assertion_is_refused(app: Any, client: Registered) -> None:
    signed = assertion(client, client.rsa)
    async with client_of(app, peer=PEER) as api:
        first = await api.post("/oauth2/token", data=form(signed))
        again = await api.post("/oauth2/token", data=form(signed))
    assert first.status_code == 200
    assert again.status_code == 401
    assert again.json() == {
        "error": "invalid_client",
        "error_description": "The client assertion has been used before",
    }


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"grant_type": "password", "username": "u", "password": "p"}, "unsupported_grant_type"),
        # No client authentication at all: who is asking is unknown (RFC 6749 §5.2).
        ({"grant_type": "client_credentials", "scope": "system/Patient.rs"}, "invalid_client"),
        ({"grant_type": "client_credentials", "client_assertion_type": "x",
          "client_assertion": "a.b.c", "scope": "system/Patient.rs"}, "invalid_request"),
    ],
)  # fmt: skip
async def test_malformed_requests_are_invalid_request(
    app: Any, data: dict[str, str], error: str
) -> None:
    async with client_of(app, peer=PEER) as api:
        answer = await api.post("/oauth2/token", data=data)
        as_json = await api.post("/oauth2/token", json={"grant_type": "client_credentials"})
    assert answer.status_code == (401 if error == "invalid_client" else 400)
    assert answer.json()["error"] == error
    assert as_json.status_code == 400
    assert as_json.json()["error"] == "invalid_request"


async def test_grants_and_refusals_are_audited_without_the_assertion(
    app: Any, client: Registered, world: World
) -> None:
    signed = assertion(client, client.rsa)
    async with client_of(app, peer=PEER) as api:
        granted = await api.post("/oauth2/token", data=form(signed))
        assert granted.status_code == 200
    async with world.sessionmaker() as session:
        rows = (
            await session.scalars(
                select(AuditRecord).where(
                    AuditRecord.action == "smart:token", AuditRecord.actor_id == client.client_id
                )
            )
        ).all()
    assert {row.outcome for row in rows} >= {"success"}
    for row in rows:
        assert row.tenant == world.tenants["sm"].slug
        assert signed not in str(row.details)
        assert granted.json()["access_token"] not in str(row.details)


async def test_a_disabled_client_loses_its_tokens_at_once(
    app: Any, settings: Settings, world: World
) -> None:
    signer = _signer("ES384")
    async with world.sessionmaker() as session, session.begin():
        made = await register_backend_service(
            session, tenant=world.tenants["sm"].slug, name="short-lived",
            jwks={"keys": [signer.public_jwk]}, scopes=["system/Patient.rs"],
        )  # fmt: skip
    registered = Registered(made.client_id, signer, signer)
    async with client_of(app, peer=PEER) as api:
        request = form(assertion(registered, signer), "system/Patient.rs")
        token = (await api.post("/oauth2/token", data=request)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert (await api.get("/fhir/Patient", headers=headers)).status_code == 200
        async with world.sessionmaker() as session, session.begin():
            await disable_client(session, tenant=world.tenants["sm"].slug, client_id=made.client_id)
        assert (await api.get("/fhir/Patient", headers=headers)).status_code == 401
        again = await api.post("/oauth2/token", data=form(assertion(registered, signer)))
    assert again.status_code == 401


def test_operators_register_list_and_disable_clients_with_the_cli(
    world: World, tmp_path: Any
) -> None:
    signer = _signer("ES384")
    keys = tmp_path / "jwks.json"
    keys.write_text(json.dumps({"keys": [signer.public_jwk]}))
    slug = world.tenants["sm"].slug
    runner = CliRunner()
    added = runner.invoke(cli, ["smart", "clients", "add-backend", "--tenant", slug, "--name",
                                "registry sync", "--jwks-file", str(keys), "--scope",
                                "system/Patient.rs"])  # fmt: skip
    assert added.exit_code == 0, added.output
    client_id = added.output.split()[1]
    listed = runner.invoke(cli, ["smart", "clients", "list", "--tenant", slug])
    assert f"{client_id}\tenabled\tbackend_service\tregistry sync" in listed.output
    assert signer.kid in listed.output
    disabled = runner.invoke(cli, ["smart", "clients", "disable", "--tenant", slug, client_id])
    assert disabled.exit_code == 0, disabled.output
    assert (
        f"{client_id}\tdisabled"
        in runner.invoke(cli, ["smart", "clients", "list", "--tenant", slug]).output
    )
    wrong = ["--name", "x", "--jwks-file", str(keys), "--scope", "patient/*.rs"]
    refused = runner.invoke(cli, ["smart", "clients", "add-backend", "--tenant", slug, *wrong])
    assert refused.exit_code == 2
    assert "not a system/ scope" in refused.output
