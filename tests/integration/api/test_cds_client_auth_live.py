"""CDS client authentication against the real PostgreSQL and Redis (HAPI is not needed).

A small app of its own (the real lifespan resources, the real error handlers) mounts probe routes
at the CDS Hooks paths that depend on ``CdsClientDep`` only, so these tests do not depend on the
CDS services themselves. Its public base is ``https://cds.example.org`` — the spec example
token's audience. A threaded ``http.server`` on 127.0.0.1 serves ``jku`` key sets. The operator
CLI (``ehr cds-hooks clients ...``) is exercised at the end.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from support.cds import (
    CdsClientKey,
    cds_bearer,
    hmac_token,
    mint_cds_token,
    new_client_key,
    register_cds_client,
    remove_cds_clients,
    unsigned_token,
)
from support.in_process import serve
from support.settings import settings_with
from support.tenants import MakeTenant
from typer.testing import CliRunner

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.core.db.models import Tenant
from ehr.core.dependencies import AppResources
from ehr.core.error_handlers import install_error_handlers
from ehr.core.errors import DependencyUnavailable
from ehr.core.redis_store import create_redis
from ehr.entrypoints.api import LifespanState
from ehr.entrypoints.cli import app as cli_app
from ehr.fhir import FhirClient
from ehr.modules.cds_hooks.client_auth import (
    CdsClientDep,
    JwksCache,
    authenticate_cds_client,
    replay_key,
)
from ehr.modules.cds_hooks.clients import disable_client, enable_client

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cdshooks"
SPEC_TOKEN = (FIXTURES / "spec__L1090__example-jwt-ES384.txt").read_text().strip()
SPEC_JWKS = json.loads((FIXTURES / "spec__L1058__example.json").read_text())
SPEC_ISS = "https://fhir-ehr.example.com/"
SPEC_JKU = "https://fhir-ehr.example.com/jwk_uri"

BASE = "https://cds.example.org"
SERVICE = "/cds-services/order-sign"


# --- the probe app ----------------------------------------------------------------------------


def probe_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[LifespanState]:
        engine = create_engine(settings.db)
        redis = create_redis(settings)
        fhir = FhirClient(settings.fhir)
        resources = AppResources(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            redis=redis,
        )
        app.state.resources = resources
        try:
            yield {"resources": resources, "fhir": fhir}
        finally:
            await fhir.aclose()
            await redis.aclose()
            await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    app.state.settings = settings
    install_error_handlers(app)

    def identity(client: Any) -> dict[str, Any]:
        body = asdict(client)
        body["client_id"] = str(body["client_id"])
        body["tenant_id"] = str(body["tenant_id"])
        return body

    @app.get("/cds-services")
    async def discovery(client: CdsClientDep) -> dict[str, Any]:
        return identity(client)

    @app.post("/cds-services/{service_id}")
    async def service(service_id: str, client: CdsClientDep) -> dict[str, Any]:
        return identity(client)

    @app.post("/cds-services/{service_id}/feedback")
    async def feedback(service_id: str, client: CdsClientDep) -> dict[str, Any]:
        return identity(client)

    return app


@pytest.fixture(scope="module")
def cds_settings(settings: Settings) -> Settings:
    return settings_with(
        settings,
        "cds_hooks",
        public_base_url=BASE + "/",
        jwks_min_refresh_seconds=1,
        jwks_fetch_timeout_seconds=1.0,
    )


@pytest.fixture(scope="module")
async def cds_api(cds_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(probe_app(cds_settings)) as client:
        yield client


@pytest.fixture(scope="module")
async def tenant(make_tenant: MakeTenant) -> Tenant:
    return await make_tenant()


@pytest.fixture(scope="module")
def es384() -> CdsClientKey:
    return new_client_key("ES384")


@pytest.fixture(scope="module")
async def issuer(
    run_id: str, tenant: Tenant, es384: CdsClientKey, db: async_sessionmaker[AsyncSession]
) -> str:
    iss = f"https://ehr-{run_id}.example.test/"
    await register_cds_client(
        db,
        tenant_slug=tenant.slug,
        issuer=iss,
        key=es384,
        fhir_servers=["https://fhir.example.test/r4"],
    )
    return iss


def token_for(key: CdsClientKey, iss: str, path: str = SERVICE, **kwargs: Any) -> str:
    return mint_cds_token(key, issuer=iss, audience=BASE + path, **kwargs)


def assert_refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["code"] == "cds_client_unauthorized"
    assert body["reason"] == reason, body
    assert response.headers["www-authenticate"].startswith('Bearer realm="cds-hooks"')


# --- a local JWKS server ----------------------------------------------------------------------


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """The slow path's client is gone when it answers: nothing to report."""


class JwksServer:
    """Serves ``documents[path]`` as JSON; counts requests per path."""

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                if self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/jwks-a")
                    self.end_headers()
                    return
                if self.path == "/slow":
                    time.sleep(3)
                if self.path == "/huge":
                    body = b'{"keys": [' + b" " * (70 * 1024) + b"]}"
                elif self.path in server.documents:
                    body = json.dumps(server.documents[self.path]).encode()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


# --- accepted ---------------------------------------------------------------------------------


async def test_a_valid_es384_token_is_accepted(
    cds_api: httpx.AsyncClient, issuer: str, es384: CdsClientKey, tenant: Tenant
) -> None:
    token = token_for(es384, issuer, jti="accepted-" + uuid.uuid4().hex)
    response = await cds_api.post(SERVICE, headers=cds_bearer(token))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["issuer"] == issuer
    assert body["tenant"] == tenant.slug
    assert body["tenant_id"] == str(tenant.id)
    assert body["fhir_servers"] == ["https://fhir.example.test/r4"]
    assert body["first_party"] is False
    assert body["token_id"].startswith("accepted-")


async def test_discovery_and_feedback_have_their_own_audience(
    cds_api: httpx.AsyncClient, issuer: str, es384: CdsClientKey
) -> None:
    response = await cds_api.get(
        "/cds-services", headers=cds_bearer(token_for(es384, issuer, "/cds-services"))
    )
    assert response.status_code == 200, response.text
    feedback = f"{SERVICE}/feedback"
    response = await cds_api.post(feedback, headers=cds_bearer(token_for(es384, issuer, feedback)))
    assert response.status_code == 200, response.text
    # The service's audience does not open its feedback endpoint (or discovery).
    response = await cds_api.post(feedback, headers=cds_bearer(token_for(es384, issuer)))
    assert_refused(response, "audience_mismatch")
    response = await cds_api.get("/cds-services", headers=cds_bearer(token_for(es384, issuer)))
    assert_refused(response, "audience_mismatch")


async def test_aud_as_a_list_holding_the_url(
    cds_api: httpx.AsyncClient, issuer: str, es384: CdsClientKey
) -> None:
    token = mint_cds_token(
        es384, issuer=issuer, audience=["https://elsewhere.example/", BASE + SERVICE]
    )
    assert (await cds_api.post(SERVICE, headers=cds_bearer(token))).status_code == 200


# --- refused ----------------------------------------------------------------------------------


async def test_no_or_malformed_credentials(cds_api: httpx.AsyncClient) -> None:
    response = await cds_api.post(SERVICE)
    assert_refused(response, "missing_credentials")
    assert response.headers["content-type"].startswith("application/problem+json")
    response = await cds_api.post(SERVICE, headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert_refused(response, "malformed_authorization")
    response = await cds_api.post(SERVICE, headers=cds_bearer("abc.def"))
    assert_refused(response, "malformed_token")


async def test_unsigned_token_is_refused(
    cds_api: httpx.AsyncClient, issuer: str, es384: CdsClientKey
) -> None:
    now = int(time.time())
    claims = {"iss": issuer, "aud": BASE + SERVICE, "iat": now, "exp": now + 60, "jti": "n1"}
    token = unsigned_token(claims, kid=es384.kid)
    response = await cds_api.post(SERVICE, headers=cds_bearer(token))
    assert_refused(response, "algorithm_not_allowed")
    assert token not in response.text


async def test_hmac_signed_with_the_public_key_is_refused(
    cds_api: httpx.AsyncClient, issuer: str, es384: CdsClientKey
) -> None:
    now = int(time.time())
    claims = {"iss": issuer, "aud": BASE + SERVICE, "iat": now, "exp": now + 60, "jti": "h1"}
    for secret in (es384.public_pem(), json.dumps(es384.public_jwk()).encode()):
        token = hmac_token(secret, claims, kid=es384.kid)
        assert_refused(
            await cds_api.post(SERVICE, headers=cds_bearer(token)), "algorithm_not_allowed"
        )


async def test_expired_token_is_refused(
    cds_api: httpx.AsyncClient, issuer: str, es384: CdsClientKey
) -> None:
    past = int(time.time()) - 600
    token = token_for(es384, issuer, issued_at=past, lifetime=60)
    assert_refused(await cds_api.post(SERVICE, headers=cds_bearer(token)), "expired")


async def test_future_and_overlong_tokens_are_refused(
    cds_api: httpx.AsyncClient, issuer: str, es384: CdsClientKey
) -> None:
    future = int(time.time()) + 600
    token = token_for(es384, issuer, issued_at=future)
    assert_refused(await cds_api.post(SERVICE, headers=cds_bearer(token)), "issued_in_future")
    token = token_for(es384, issuer, lifetime=3600)
    assert_refused(await cds_api.post(SERVICE, headers=cds_bearer(token)), "lifetime_too_long")


async def test_missing_claims_are_refused(
    cds_api: httpx.AsyncClient, issuer: str, es384: CdsClientKey
) -> None:
    for claim in ("jti", "exp", "iat", "aud"):
        token = token_for(es384, issuer, omit=(claim,))
        assert_refused(await cds_api.post(SERVICE, headers=cds_bearer(token)), "claim_missing")
    token = token_for(es384, issuer, omit=("kid",))
    assert_refused(await cds_api.post(SERVICE, headers=cds_bearer(token)), "kid_missing")


async def test_the_spec_example_token_verifies_but_is_expired(
    cds_api: httpx.AsyncClient, tenant: Tenant, db: async_sessionmaker[AsyncSession]
) -> None:
    """CDS Hooks 2.0.1's own example (index.md L1090, JWKS at L1058): valid signature, old exp."""
    await remove_cds_clients(db, [SPEC_ISS])
    await register_cds_client(
        db, tenant_slug=tenant.slug, issuer=SPEC_ISS, jwks=SPEC_JWKS, jku_allowlist=[SPEC_JKU]
    )
    try:
        response = await cds_api.post("/cds-services/some-service", headers=cds_bearer(SPEC_TOKEN))
        assert_refused(response, "expired")
        assert SPEC_TOKEN not in response.text
    finally:
        await remove_cds_clients(db, [SPEC_ISS])


async def test_wrong_audience_is_refused(
    cds_api: httpx.AsyncClient, issuer: str, es384: CdsClientKey
) -> None:
    for aud in (
        "http://testserver" + SERVICE,
        BASE + "/cds-services/patient-view",
        BASE + SERVICE + "/",
        BASE,
    ):
        token = mint_cds_token(es384, issuer=issuer, audience=aud)
        assert_refused(await cds_api.post(SERVICE, headers=cds_bearer(token)), "audience_mismatch")


async def test_unknown_issuer_is_refused(cds_api: httpx.AsyncClient, es384: CdsClientKey) -> None:
    token = token_for(es384, "https://unknown-" + uuid.uuid4().hex + ".example/")
    assert_refused(await cds_api.post(SERVICE, headers=cds_bearer(token)), "issuer_unknown")


async def test_another_key_or_kid_is_refused(
    cds_api: httpx.AsyncClient, issuer: str, es384: CdsClientKey
) -> None:
    impostor = new_client_key("ES384", kid=es384.kid)
    token = token_for(impostor, issuer)
    assert_refused(await cds_api.post(SERVICE, headers=cds_bearer(token)), "bad_signature")
    stranger = new_client_key("ES384")
    assert_refused(
        await cds_api.post(SERVICE, headers=cds_bearer(token_for(stranger, issuer))), "kid_unknown"
    )


async def test_a_replayed_jti_is_refused(
    cds_api: httpx.AsyncClient, issuer: str, es384: CdsClientKey, settings: Settings
) -> None:
    token = token_for(es384, issuer)
    assert (await cds_api.post(SERVICE, headers=cds_bearer(token))).status_code == 200
    assert_refused(await cds_api.post(SERVICE, headers=cds_bearer(token)), "replayed")
    # Also across endpoints: a jti is single-use, whatever the audience.
    jti = "replay-" + uuid.uuid4().hex
    first = token_for(es384, issuer, "/cds-services", jti=jti)
    assert (await cds_api.get("/cds-services", headers=cds_bearer(first))).status_code == 200
    second = token_for(es384, issuer, jti=jti)
    assert_refused(await cds_api.post(SERVICE, headers=cds_bearer(second)), "replayed")
    # The Redis key expires with the token (+ skew).
    redis = create_redis(settings)
    try:
        ttl = await redis.ttl(replay_key(issuer, jti))
    finally:
        await redis.aclose()
    assert 0 < ttl <= 60 + settings.cds_hooks.clock_skew_seconds + 1


async def test_a_disabled_client_and_tenant_are_refused(
    cds_api: httpx.AsyncClient,
    make_tenant: MakeTenant,
    db: async_sessionmaker[AsyncSession],
    run_id: str,
) -> None:
    own = await make_tenant()
    key = new_client_key("ES256")
    iss = f"https://disabled-{run_id}.example.test/"
    await register_cds_client(db, tenant_slug=own.slug, issuer=iss, key=key, first_party=True)
    response = await cds_api.post(SERVICE, headers=cds_bearer(token_for(key, iss)))
    assert response.status_code == 200
    assert response.json()["first_party"] is True

    async with db() as session, session.begin():
        await disable_client(session, iss)
    assert_refused(
        await cds_api.post(SERVICE, headers=cds_bearer(token_for(key, iss))), "client_disabled"
    )
    async with db() as session, session.begin():
        await enable_client(session, iss)
    assert (await cds_api.post(SERVICE, headers=cds_bearer(token_for(key, iss)))).status_code == 200

    async with db() as session, session.begin():
        found = await session.get(Tenant, own.id)
        assert found is not None
        found.status = "disabled"
    assert_refused(
        await cds_api.post(SERVICE, headers=cds_bearer(token_for(key, iss))), "tenant_disabled"
    )


# --- jku ----------------------------------------------------------------------------------


async def test_a_jku_not_on_the_allow_list_is_refused(
    cds_api: httpx.AsyncClient,
    issuer: str,
    es384: CdsClientKey,
    jwks_server: JwksServer,
) -> None:
    jwks_server.documents["/not-listed"] = es384.jwks()
    token = token_for(es384, issuer, jku=jwks_server.url("/not-listed"))
    assert_refused(await cds_api.post(SERVICE, headers=cds_bearer(token)), "jku_not_allowed")
    assert jwks_server.hits.get("/not-listed") is None  # never fetched


async def test_an_allow_listed_jku_is_fetched_cached_and_rotated(
    cds_api: httpx.AsyncClient,
    tenant: Tenant,
    jwks_server: JwksServer,
    db: async_sessionmaker[AsyncSession],
    run_id: str,
) -> None:
    first, second = new_client_key("ES384"), new_client_key("RS256")
    jwks_server.documents["/jwks-a"] = first.jwks()
    url = jwks_server.url("/jwks-a")
    iss = f"https://jku-{run_id}.example.test/"
    await register_cds_client(db, tenant_slug=tenant.slug, issuer=iss, jku_allowlist=[url])

    # With the jku in the header, and without it (the allow-listed URL is used).
    for jku in (url, None):
        token = token_for(first, iss, jku=jku)
        assert (await cds_api.post(SERVICE, headers=cds_bearer(token))).status_code == 200
    assert jwks_server.hits["/jwks-a"] == 1  # cached

    # The client rotates: a new kid is served. A refetch happens at most once a second here.
    jwks_server.documents["/jwks-a"] = second.jwks()
    await asyncio.sleep(1.1)
    token = token_for(second, iss, jku=url)
    assert (await cds_api.post(SERVICE, headers=cds_bearer(token))).status_code == 200
    assert jwks_server.hits["/jwks-a"] == 2
    # The old key is gone from the served set, but the cached copy is fresh: ask for an
    # unknown kid twice in a row — only one more fetch may happen, then refusals.
    stranger = new_client_key("ES384")
    for _ in range(3):
        response = await cds_api.post(
            SERVICE, headers=cds_bearer(token_for(stranger, iss, jku=url))
        )
        assert_refused(response, "kid_unknown")
    assert jwks_server.hits["/jwks-a"] <= 3


async def test_jwks_fetch_failures_are_401_not_hangs(
    cds_api: httpx.AsyncClient,
    tenant: Tenant,
    jwks_server: JwksServer,
    db: async_sessionmaker[AsyncSession],
    run_id: str,
) -> None:
    key = new_client_key("ES384")
    for path in ("/redirect", "/huge", "/missing", "/slow"):
        url = jwks_server.url(path)
        iss = f"https://fetch{path.replace('/', '-')}-{run_id}.example.test/"
        await register_cds_client(db, tenant_slug=tenant.slug, issuer=iss, jku_allowlist=[url])
        started = time.monotonic()
        response = await cds_api.post(SERVICE, headers=cds_bearer(token_for(key, iss, jku=url)))
        assert_refused(response, "jwks_unavailable")
        assert "could not be fetched" in response.json()["detail"]
        assert time.monotonic() - started < 2.5, path
    # Private keys in a served set are never used.
    jwks_server.documents["/private"] = {"keys": [{**key.public_jwk(), "d": "AAAA"}]}
    url = jwks_server.url("/private")
    iss = f"https://private-{run_id}.example.test/"
    await register_cds_client(db, tenant_slug=tenant.slug, issuer=iss, jku_allowlist=[url])
    response = await cds_api.post(SERVICE, headers=cds_bearer(token_for(key, iss, jku=url)))
    assert_refused(response, "kid_unknown")


# --- Redis down: fail closed ------------------------------------------------------------------


async def test_redis_unreachable_is_503(
    cds_settings: Settings, issuer: str, es384: CdsClientKey
) -> None:
    engine = create_engine(cds_settings.db)
    broken = Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.5)
    fhir = FhirClient(cds_settings.fhir)
    resources = AppResources(
        settings=cds_settings,
        engine=engine,
        sessionmaker=create_sessionmaker(engine),
        redis=broken,
    )
    try:
        with pytest.raises(DependencyUnavailable):
            await authenticate_cds_client(
                authorization=f"Bearer {token_for(es384, issuer)}",
                path=SERVICE,
                resources=resources,
                cache=JwksCache(),
            )
    finally:
        await broken.aclose()
        await fhir.aclose()
        await engine.dispose()


# --- the operator CLI -------------------------------------------------------------------------


def ehr(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli_app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_registers_lists_disables_and_enables(
    tenant: Tenant, tmp_path: Path, run_id: str
) -> None:
    key = new_client_key("ES384")
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(key.jwks()))
    iss = f"https://cli-{run_id}.example.test/"
    code, out, err = ehr(
        "cds-hooks", "clients", "add", "--tenant", tenant.slug, "--issuer", iss,
        "--name", "CLI EHR", "--jwks-file", str(jwks_file),
        "--jku", "https://cli.example.test/jwks", "--fhir-server", "https://cli.example.test/fhir",
        "--first-party",
    )  # fmt: skip
    assert code == 0, err
    assert f"cds client {iss} registered for {tenant.slug}" in out
    code, out, err = ehr("cds-hooks", "clients", "list", "--tenant", tenant.slug)
    assert code == 0, err
    line = next(row for row in out.splitlines() if row.startswith(iss))
    assert "\tenabled\tfirst-party\tCLI EHR\tjwks 1 key(s)\t" in line
    assert "https://cli.example.test/fhir" in line
    code, out, err = ehr("cds-hooks", "clients", "disable", iss)
    assert code == 0, err
    code, out, _ = ehr("cds-hooks", "clients", "list", "--tenant", tenant.slug)
    assert f"{iss}\tdisabled\t" in out
    code, out, err = ehr("cds-hooks", "clients", "enable", iss)
    assert code == 0, err
    assert f"cds client {iss} enabled" in out
    # Re-registering the issuer is a conflict.
    code, _, err = ehr(
        "cds-hooks", "clients", "add", "--tenant", tenant.slug, "--issuer", iss, "--name", "x",
        "--jwks-file", str(jwks_file),
    )  # fmt: skip
    assert code == 2
    assert "cds_client_conflict" in err


def test_cli_refuses_bad_input(tenant: Tenant, tmp_path: Path, run_id: str) -> None:
    key = new_client_key("ES384")
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [{**key.public_jwk(), "d": "AAAA"}]}))
    symmetric = tmp_path / "oct.json"
    symmetric.write_text(json.dumps({"kty": "oct", "kid": "h", "k": "c2VjcmV0"}))
    not_json = tmp_path / "bad.json"
    not_json.write_text("{")
    iss = f"https://cli-bad-{run_id}.example.test/"
    base = ("cds-hooks", "clients", "add", "--tenant", tenant.slug, "--issuer", iss, "--name", "x")
    for extra in (
        ("--jwks-file", str(private)),
        ("--jwks-file", str(symmetric)),
        ("--jwks-file", str(not_json)),
        ("--jwks-file", str(tmp_path / "missing.json")),
        ("--jku", "http://ehr.example.test/jwks"),
        (),
    ):
        code, _, err = ehr(*base, *extra)
        assert code == 2, (extra, err)
    code, _, err = ehr(
        "cds-hooks", "clients", "add", "--tenant", "no-such-tenant-zz", "--issuer", iss,
        "--name", "x", "--jku", "https://ehr.example.test/jwks",
    )  # fmt: skip
    assert code == 2
    assert "tenant_not_found" in err
    for command in ("disable", "enable"):
        code, _, err = ehr("cds-hooks", "clients", command, "https://nobody.example.test/")
        assert code == 2
        assert "cds_client_not_found" in err
    code, out, _ = ehr("cds-hooks", "clients", "list", "--tenant", tenant.slug)
    assert iss not in out
